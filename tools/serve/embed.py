#!/usr/bin/env python3
"""Embeds a text file (the upload page) in a C++ header as a raw string literal."""
import sys

src, out, name = sys.argv[1], sys.argv[2], sys.argv[3]
text = open(src, encoding="utf-8").read()
delim = "dfdembed"
if ")" + delim + '"' in text:
    sys.exit("embed.py: delimiter occurs in " + src)
with open(out, "w", encoding="utf-8") as f:
    f.write("// Generated from %s by tools/serve/embed.py: do not edit.\n#pragma once\n" % src.split("/")[-1])
    f.write('static const char %s[] = R"%s(%s)%s";\n' % (name, delim, text, delim))
