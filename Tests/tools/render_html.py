#!/usr/bin/env python3
"""Renders a local HTML page in headless Chromium and checks what a reader would see.

usage: render_html.py PAGE.html [SCREENSHOT.png]

Talks to Chromium over the DevTools protocol on a pipe (--remote-debugging-pipe: fd 3 in, fd 4 out,
messages are JSON ended by NUL), so it needs nothing but python3 and the browser. Checks:
  - the page names no network address and has no script (a report must work copied off a cluster);
  - no console error, no uncaught exception, no failed request, and every request a file: or data: URL;
  - every <img> loaded (complete, natural width > 0); prints their sources;
  - a screenshot is not blank (more than 1% of its pixels differ from the page's background).
Prints "OK images=N" and exits 0, or prints the problems and exits 1; exits 3 when no Chromium is installed.
"""
import base64, json, os, re, select, shutil, struct, subprocess, sys, tempfile, time, zlib


def find_chromium():
    for path in ("/usr/lib/chromium/chromium", shutil.which("chromium") or "", shutil.which("chromium-browser") or ""):
        if path and os.access(path, os.X_OK):
            return path
    return None


class Browser:
    def __init__(self, exe):
        to_r, self.to_w = os.pipe()
        self.from_r, from_w = os.pipe()
        self.profile = tempfile.mkdtemp(prefix="render-html-")

        def fds():   # the browser reads commands on fd 3 and writes answers on fd 4
            os.dup2(to_r, 3)
            os.dup2(from_w, 4)

        self.proc = subprocess.Popen(
            [exe, "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe", "--no-first-run",
             "--no-default-browser-check", "--disable-extensions", "--disable-background-networking",
             "--user-data-dir=" + self.profile, "--window-size=1400,1000", "about:blank"],
            pass_fds=(3, 4), preexec_fn=fds, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_r)
        os.close(from_w)
        self.buf, self.next_id, self.events = b"", 0, []

    def send(self, method, params=None, session=None, timeout=30):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.to_w, json.dumps(msg).encode() + b"\0")
        deadline = time.time() + timeout
        while True:
            m = self.receive(deadline)
            if m.get("id") == self.next_id:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})

    def receive(self, deadline):
        while b"\0" not in self.buf:
            left = deadline - time.time()
            if left <= 0 or not select.select([self.from_r], [], [], left)[0]:
                raise TimeoutError("no answer from Chromium")
            chunk = os.read(self.from_r, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed the pipe")
            self.buf += chunk
        raw, self.buf = self.buf.split(b"\0", 1)
        m = json.loads(raw)
        if "method" in m:
            self.events.append(m)
        return m

    def wait_for(self, method, timeout=30):
        deadline = time.time() + timeout
        while not any(e["method"] == method for e in self.events):
            self.receive(deadline)

    def drain(self, seconds):
        deadline = time.time() + seconds
        try:
            while True:
                self.receive(deadline)
        except TimeoutError:
            pass

    def close(self):
        try:
            os.write(self.to_w, json.dumps({"id": 0, "method": "Browser.close"}).encode() + b"\0")
            self.proc.wait(timeout=10)
        except Exception:
            self.proc.kill()
        shutil.rmtree(self.profile, ignore_errors=True)


def png_pixels(data):
    """(width, height, rows of RGBA bytes) of an 8-bit RGB(A) PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, w = 8, b"", 0
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, color = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and color in (2, 6), (depth, color)
            bpp = 4 if color == 6 else 3
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw, stride, prev, rows = zlib.decompress(idat), w * bpp, bytearray(w * bpp), []
    for y in range(h):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if f == 1: line[i] = (line[i] + a) & 255
            elif f == 2: line[i] = (line[i] + b) & 255
            elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return w, h, bpp, rows


def not_blank_fraction(png):
    w, h, bpp, rows = png_pixels(png)
    background = rows[0][:bpp]
    differ = sum(1 for row in rows for x in range(w) if row[x * bpp:(x + 1) * bpp] != background)
    return differ / float(w * h)


def static_problems(html):
    problems = []
    if re.search(r"<script|<link|@import|<iframe|<object|<embed", html, re.I):
        problems.append("the page has a script, stylesheet link, import or embedded object")
    for m in re.finditer(r"""(?:src|href|action|content)\s*=\s*["']?([^"'\s>]*)""", html, re.I):
        v = m.group(1)
        if re.match(r"^[a-z][a-z0-9+.-]*:", v, re.I) or v.startswith("//"):
            problems.append("a reference to another origin: " + v)
    if re.search(r"(?:https?|ftp|wss?)://", html, re.I):
        problems.append("a network address in the text")
    return problems


def main():
    page = os.path.abspath(sys.argv[1])
    shot = sys.argv[2] if len(sys.argv) > 2 else None
    exe = find_chromium()
    if not exe:
        print("SKIP chromium is not installed (scripts/setup installs it)")
        return 3
    html = open(page, encoding="utf-8").read()
    problems = static_problems(html)
    b = Browser(exe)
    try:
        target = b.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        s = b.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            b.send(domain + ".enable", session=s)
        b.send("Page.navigate", {"url": "file://" + page}, session=s)
        b.wait_for("Page.loadEventFired")
        b.drain(1.0)
        images = b.send("Runtime.evaluate", {"returnByValue": True, "expression":
            "JSON.stringify(Array.from(document.images).map(i => [i.getAttribute('src'), i.complete, i.naturalWidth]))"},
            session=s)["result"]["value"]
        png = base64.b64decode(b.send("Page.captureScreenshot", {"format": "png",
            "clip": {"x": 0, "y": 0, "width": 1400, "height": 1000, "scale": 0.25}}, session=s)["data"])
    finally:
        b.close()
    for e in b.events:
        p, m = e.get("params", {}), e["method"]
        if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert", "warning"):
            problems.append("console %s: %s" % (p["type"], json.dumps(p.get("args"))[:300]))
        elif m == "Runtime.exceptionThrown":
            problems.append("exception: " + json.dumps(p.get("exceptionDetails"))[:300])
        elif m == "Log.entryAdded" and p["entry"].get("level") in ("error", "warning"):
            problems.append("log %s: %s %s" % (p["entry"]["level"], p["entry"].get("text"), p["entry"].get("url", "")))
        elif m == "Network.loadingFailed":
            problems.append("failed request: %s %s" % (p.get("errorText"), p.get("requestId")))
        elif m == "Network.requestWillBeSent":
            url = p["request"]["url"]
            if not (url.startswith("file:") or url.startswith("data:")):
                problems.append("a network request: " + url)
        elif m == "Network.responseReceived" and p["response"].get("status") not in (0, 200):
            problems.append("request %s answered %s" % (p["response"]["url"], p["response"]["status"]))
    images = json.loads(images)
    for src, complete, width in images:
        if not complete or width <= 0:
            problems.append("image not shown: " + str(src))
    if shot:
        open(shot, "wb").write(png)
    fraction = not_blank_fraction(png)
    if fraction < 0.01:
        problems.append("the screenshot is blank (%.4f of its pixels differ from the background)" % fraction)
    if problems:
        print("\n".join(problems))
        return 1
    print("OK images=%d drawn=%.3f" % (len(images), fraction))
    for src, _, _ in images:
        print("IMG " + src)
    return 0


if __name__ == "__main__":
    sys.exit(main())
