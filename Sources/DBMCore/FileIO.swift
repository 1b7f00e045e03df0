import Foundation

// Files read with size checks and written atomically, shared by the .npy and safetensors formats.

/// A file opened for reading with its size (regular files only, so the size is known up front).
final class InputFile {
    let fd: Int32
    let size: Int
    let path: String

    init(path: String) throws {
        self.path = path
        // Non-blocking, so that a FIFO (which would wait for a writer forever) opens at once and is
        // refused below with the rest of what is not a regular file.
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
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
            throw DBMError("'\(path)' is not a regular file (\(fileKind(st.st_mode)))")
        }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
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
        try transferAll(count, failing: "cannot read file '\(path)'") { done, length in Glibc.read(fd, p + done, length) }
    }

    /// Reads up to count bytes at `offset` with pread(2), leaving the file position alone; returns fewer only
    /// at end of file. Read, not mapped: a mapped file that another process truncates raises SIGBUS on
    /// access, where pread returns short and becomes an error message.
    func read(at offset: Int, into p: UnsafeMutableRawPointer, count: Int) throws -> Int {
        try transferAll(count, failing: "cannot read file '\(path)'") { done, length in
            Glibc.pread(fd, p + done, length, off_t(offset + done))
        }
    }

    func close() { _ = Glibc.close(fd) }
}

/// Moves `count` bytes by calls of `transfer(done, length)`, each one read(2), write(2) or pwrite(2) of
/// `length` ≤ 1 GiB bytes starting `done` bytes in, until all have moved or a call moves none (the end of a
/// file being read); a call interrupted by a signal (EINTR) is made again. Returns the bytes moved; a
/// failure throws "`failing`: the system's reason".
func transferAll(_ count: Int, failing: @autoclosure () -> String,
                 _ transfer: (_ done: Int, _ length: Int) -> Int) throws -> Int {
    var done = 0
    while done < count {
        let n = transfer(done, min(count - done, 1 << 30))
        if n < 0 {
            if errno == EINTR { continue }
            throw DBMError("\(failing()): \(String(cString: strerror(errno)))")
        }
        if n == 0 { break }
        done += n
    }
    return done
}

/// transferAll for a write: every byte is written, or it throws (a write that takes no byte is refused
/// rather than made again forever).
func writeAll(_ count: Int, failing: @autoclosure () -> String,
              _ write: (_ done: Int, _ length: Int) -> Int) throws {
    let done = try transferAll(count, failing: failing(), write)
    if done < count { throw DBMError("\(failing()): the system wrote \(done) of \(count) bytes, then no more") }
}

/// What a file of this mode is, for messages.
func fileKind(_ mode: mode_t) -> String {
    switch mode & S_IFMT {
    case S_IFREG: return "a regular file"
    case S_IFDIR: return "a directory"
    case S_IFIFO: return "a FIFO"
    case S_IFCHR: return "a character device"
    case S_IFBLK: return "a block device"
    case S_IFSOCK: return "a socket"
    case S_IFLNK: return "a symbolic link"
    default: return "not a regular file"
    }
}

/// Where a write to `path` lands: through symbolic links to their target (a link is never replaced by
/// a file), onto a regular file or a new name only (never onto a FIFO, a device or a directory).
func writeDestination(_ path: String) throws -> String {
    var target = path
    for _ in 0..<40 {
        var st = stat()
        guard lstat(target, &st) == 0 else { return target }   // a new name
        switch st.st_mode & S_IFMT {
        case S_IFREG: return target
        case S_IFLNK:
            var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            let n = readlink(target, &buf, buf.count - 1)
            guard n > 0 else { throw DBMError("cannot write '\(path)': cannot read the link '\(target)': \(String(cString: strerror(errno)))") }
            let link = String(decoding: buf[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            let slash = target.lastIndex(of: "/")
            target = link.hasPrefix("/") || slash == nil ? link : String(target[...slash!]) + link
        default:
            throw DBMError("cannot write '\(path)': it is \(fileKind(st.st_mode)), not a regular file; give the name of a file")
        }
    }
    throw DBMError("cannot write '\(path)': too many levels of symbolic links")
}

/// A temporary file next to the destination (`path`, or the file a symbolic link at `path` leads to)
/// that replaces it by rename(2) on commit, after fsync: a crash leaves the old file or the new one.
final class AtomicOutputFile {
    let path: String
    let destination: String
    let tempPath: String
    var fd: Int32

    init(path: String) throws {
        self.path = path
        let path = try writeDestination(path)
        destination = path
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
        try writeAll(count, failing: "cannot write '\(path)'") { done, length in Glibc.write(fd, p + done, length) }
    }

    /// Flushes to disk, closes and renames over the destination. (The recorder's growing files append
    /// instead and flush only at close: a whole-file write is a checkpoint or a result, worth its fsync.)
    func commit() throws {
        let fd = self.fd
        self.fd = -1
        let synced = fsync(fd), closed = Glibc.close(fd)
        if synced != 0 || closed != 0 {
            throw DBMError("cannot write '\(path)': \(String(cString: strerror(errno)))")
        }
        if rename(tempPath, destination) != 0 {
            throw DBMError("cannot write '\(path)': \(String(cString: strerror(errno)))")
        }
    }

    /// Renames over the destination and hands over the still open descriptor (write-only), for a
    /// file that goes on growing in place (NpyAppender). The caller closes it.
    func commitKeepingOpen() throws -> Int32 {
        guard rename(tempPath, destination) == 0 else {
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

/// Writes bytes to path atomically (see AtomicOutputFile): a reader sees the old file or the new one.
public func writeFileAtomically(_ path: String, _ bytes: UnsafeRawBufferPointer) throws {
    let out = try AtomicOutputFile(path: path)
    do {
        if let base = bytes.baseAddress { try out.write(base, bytes.count) }
        try out.commit()
    } catch {
        out.abort()
        throw error
    }
}

/// An exclusive lock on a file (flock), held until release() or the end of the process, with the
/// holder's PID and host written in the file for the message another process gets. flock is advisory
/// and per open file: it excludes every other process that asks for it, here and, on NFS (Linux ≥ 2.6.12
/// emulates it with byte-range locks), on other clients; not on file systems without lock support.
public final class FileLock {
    public let path: String
    private var fd: Int32

    /// Takes the lock at once or throws, naming the holder.
    public init(path: String) throws {
        self.path = path
        // O_NOFOLLOW: a link planted at the lock's name cannot make us truncate another file.
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0o644)
        guard fd >= 0 else { throw DBMError("cannot open the lock file '\(path)': \(String(cString: strerror(errno)))") }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            _ = Glibc.close(fd)
            throw DBMError("cannot lock '\(path)': it is \(fileKind(st.st_mode)), not a regular file")
        }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let e = errno
            var buf = [UInt8](repeating: 0, count: 256)
            let n = pread(fd, &buf, 255, 0)
            _ = Glibc.close(fd)
            let holder = n > 0 ? String(decoding: buf[..<n], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) : ""
            if e == EWOULDBLOCK {
                throw DBMError("'\(path)' is locked by \(holder.isEmpty ? "another process" : holder)")
            }
            throw DBMError("cannot lock '\(path)': \(String(cString: strerror(e)))")
        }
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, 255)
        let me = Array("process \(getpid()) on \(String(cString: host))\n".utf8)
        _ = ftruncate(fd, 0)
        _ = me.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
    }

    public func release() {
        guard fd >= 0 else { return }
        _ = flock(fd, LOCK_UN)
        _ = Glibc.close(fd)
        fd = -1
    }

    deinit { release() }
}

/// mkdir -p: the folder and its missing parents; an error names the part that could not be made and why.
public func makeDirectories(_ path: String) throws {
    guard !path.isEmpty else { throw DBMError("cannot create a folder with an empty name") }
    var prefix = path.hasPrefix("/") ? "/" : ""
    for part in path.split(separator: "/", omittingEmptySubsequences: true) {
        prefix += (prefix.isEmpty || prefix.hasSuffix("/") ? "" : "/") + part
        if mkdir(prefix, 0o777) != 0 && errno != EEXIST {
            throw DBMError("cannot create the folder '\(prefix)': \(String(cString: strerror(errno)))")
        }
    }
    var st = stat()
    guard stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else {
        throw DBMError("cannot create the folder '\(path)': \(stat(path, &st) == 0 ? "it is \(fileKind(st.st_mode))" : String(cString: strerror(errno)))")
    }
}
