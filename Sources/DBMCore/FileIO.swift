import Foundation

// Files read with size checks and written atomically, shared by the .npy and safetensors formats.

/// A file opened for reading with its size (regular files only, so the size is known up front).
final class InputFile {
    let fd: Int32
    let size: Int
    let path: String

    init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let e = errno
            if e == ENOENT { throw DBMError("file '\(path)' does not exist") }
            throw DBMError("cannot open file '\(path)': \(String(cString: strerror(e)))")
        }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let e = errno
            _ = Glibc.close(fd)
            throw DBMError("cannot read file '\(path)': \(String(cString: strerror(e)))")
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            _ = Glibc.close(fd)
            throw DBMError("'\(path)' is not a regular file")
        }
        self.fd = fd
        self.size = Int(st.st_size)
    }

    func seek(to offset: Int) throws {
        guard lseek(fd, off_t(offset), SEEK_SET) == off_t(offset) else {
            throw DBMError("cannot read file '\(path)': \(String(cString: strerror(errno)))")
        }
    }

    /// Reads up to count bytes; returns fewer only at end of file.
    func read(into p: UnsafeMutableRawPointer, count: Int) throws -> Int {
        var done = 0
        while done < count {
            let n = Glibc.read(fd, p + done, min(count - done, 1 << 30))
            if n < 0 {
                if errno == EINTR { continue }
                throw DBMError("cannot read file '\(path)': \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            done += n
        }
        return done
    }

    func close() { _ = Glibc.close(fd) }
}

/// A temporary file next to `path` that replaces `path` by rename(2) on commit.
final class AtomicOutputFile {
    let path: String
    let tempPath: String
    var fd: Int32

    init(path: String) throws {
        self.path = path
        let slash = path.lastIndex(of: "/")
        let dir = slash.map { String(path[..<$0]) } ?? "."
        let base = slash.map { String(path[path.index(after: $0)...]) } ?? path
        guard !base.isEmpty else { throw DBMError("cannot write '\(path)': the path names a directory") }
        var fd: Int32 = -1
        var temp = ""
        // O_EXCL with a random name: never clobbers another writer's temporary file. The mode is
        // filtered by the umask, like any file the process creates (mkstemp would force 0600).
        for _ in 0..<16 {
            temp = (dir.isEmpty ? "" : dir + "/") + ".\(base).\(getpid()).\(String(UInt64.random(in: 0...UInt64.max), radix: 36)).tmp"
            fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o666)
            if fd >= 0 || errno != EEXIST { break }
        }
        guard fd >= 0 else {
            throw DBMError("cannot write '\(path)': cannot create a file in '\(dir.isEmpty ? "/" : dir)': "
                + String(cString: strerror(errno)))
        }
        self.fd = fd
        self.tempPath = temp
    }

    func write(_ p: UnsafeRawPointer, _ count: Int) throws {
        var done = 0
        while done < count {
            let n = Glibc.write(fd, p + done, min(count - done, 1 << 30))
            if n < 0 {
                if errno == EINTR { continue }
                throw DBMError("cannot write '\(path)': \(String(cString: strerror(errno)))")
            }
            done += n
        }
    }

    /// Closes and renames over the destination. No fsync: the rename already protects readers and
    /// a killed process; surviving power loss is not worth a disk flush per recorded spectrum.
    func commit() throws {
        let fd = self.fd
        self.fd = -1
        if Glibc.close(fd) != 0 {
            throw DBMError("cannot write '\(path)': \(String(cString: strerror(errno)))")
        }
        if rename(tempPath, path) != 0 {
            throw DBMError("cannot write '\(path)': \(String(cString: strerror(errno)))")
        }
    }

    /// Renames over the destination and hands over the still open descriptor (write-only), for a
    /// file that goes on growing in place (NpyAppender). The caller closes it.
    func commitKeepingOpen() throws -> Int32 {
        guard rename(tempPath, path) == 0 else {
            throw DBMError("cannot write '\(path)': \(String(cString: strerror(errno)))")
        }
        let fd = self.fd
        self.fd = -1
        return fd
    }

    /// Removes the temporary file after a failure.
    func abort() {
        if fd >= 0 { _ = Glibc.close(fd); fd = -1 }
        _ = unlink(tempPath)
    }
}
