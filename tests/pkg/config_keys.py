#!/usr/bin/env python3
"""Print every config key the parser knows, one a line, as SECTION_ARRAY_NAME KEY.

The parser refuses unknown keys with sky_cfg_check_keys(err, cfg, node, ARRAY): every key
it accepts is a string in an ARRAY passed there. This reads those arrays from the C
sources (lib/*/ and gateway/), so a key added to the parser shows up here without anyone
remembering to list it."""
import pathlib
import re
import sys

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else '.')
call = re.compile(r'sky_cfg_check_keys\s*\([^;]*?,\s*(\w+)\s*\)', re.S)
found = 0
for src in sorted(list(root.glob('lib/*/*.c')) + list(root.glob('gateway/*.c'))):
    text = src.read_text()
    for name in sorted(set(call.findall(text))):
        if name == 'allowed':  # the checker's own parameter
            continue
        # the array is declared in this file (function-local arrays may share a name: each
        # is passed in its own function, so all of them count) or, for sky_cfg_sections, in
        # another file of lib/config
        decl = re.compile(r'\b' + name + r'\s*\[\s*\]\s*=\s*\{(.*?)\}', re.S)
        bodies = []
        for cand in [src] + sorted(root.glob('lib/config/*.c')):
            bodies = decl.findall(cand.read_text())
            if bodies:
                break
        if not bodies:
            sys.exit(f'{src}: key array {name} not found')
        for body in bodies:
            for key in re.findall(r'"([^"]*)"', body):
                print(f'{src.relative_to(root)}:{name} {key}')
                found += 1
if found < 20:
    sys.exit(f'only {found} keys found: did sky_cfg_check_keys change shape?')
