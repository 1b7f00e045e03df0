#!/usr/bin/env python3
"""Checks that an HTML file parses strictly: a doctype, every element but the void ones closed in order,
nothing after </html>, and <html> holding <head> and <body>. usage: check_html.py FILE; prints OK or why not."""
import sys
from html.parser import HTMLParser

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class Strict(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.seen, self.problems, self.doctype = [], [], [], False

    def handle_decl(self, decl):
        self.doctype = self.doctype or decl.lower() == "doctype html"

    def handle_starttag(self, tag, attrs):
        if not self.stack and self.seen:
            self.problems.append(f"<{tag}> after </html>")
        self.seen.append(tag)
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.seen.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.stack[-1] if self.stack else 'nothing'} (line {self.getpos()[0]})")
        else:
            self.stack.pop()


text = open(sys.argv[1], encoding="utf-8").read()
p = Strict()
p.feed(text)
p.close()
if not p.doctype:
    p.problems.append("no <!DOCTYPE html>")
if p.stack:
    p.problems.append("unclosed: " + ", ".join(p.stack))
if p.seen[:1] != ["html"] or "head" not in p.seen or "body" not in p.seen:
    p.problems.append("not <html> with <head> and <body>")
print("\n".join(p.problems) if p.problems else "OK")
sys.exit(1 if p.problems else 0)
