#!/usr/bin/env python3
"""test_layers: tools/check-layers can fail, and says why.

Each case writes a tiny tree (a layering table, a few C files), compiles its objects with
the system C compiler, writes the compile_commands.json meson would, runs check-layers on
it and checks the exit status and the message. Failure cases first; the last case is a
clean tree that must pass.

usage: test_layers.py CHECK_LAYERS_SCRIPT [CC]
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

TABLE = """# arch

| module | folder | public headers | may use |
| --- | --- | --- | --- |
| app | `gateway/` | — | stage, core |
| stage | `lib/stage/` | `stage.h`, `stage_inline.h` | core |
| other | `lib/other/` | — | core |
| core | `lib/core/` | `base.h` | — |
"""

CORE = {
    "lib/include/skygate/base.h": "int core_fn(int x);\n",
    "lib/core/core.c": '#include "skygate/base.h"\nint core_fn(int x) { return x + 1; }\n',
}
STAGE = {
    "lib/include/skygate/stage.h": "int stage_fn(int x);\n",
    "lib/stage/stage.c": '#include "skygate/stage.h"\n#include "skygate/base.h"\n'
                         "int stage_fn(int x) { return core_fn(x); }\n",
}
APP = {
    "gateway/main.c": '#include "skygate/stage.h"\nint main(void) { return stage_fn(1); }\n',
}


def tree(*parts, **extra):
    files = {}
    for p in parts:
        files.update(p)
    files.update({k.replace("__", "/"): v for k, v in extra.items()})
    return files


CASES = [
    # name, files, table, expected exit status, strings the output must contain
    ("loop between two files by calls",
     tree(CORE, STAGE, APP, **{
         "lib/stage/x.c": "int y_fn(void);\nint x_fn(void) { return 1; }\n"
                          "int x_user(void) { return y_fn(); }\n",
         "lib/stage/y.c": "int x_fn(void);\nint y_fn(void) { return 2; }\n"
                          "int y_user(void) { return x_fn(); }\n"}),
     TABLE, 1, ["file loop in stage: x.c -> y.c (calls y_fn) -> x.c (calls x_fn)"]),
    ("loop through a global variable",
     tree(CORE, STAGE, APP, **{
         "lib/stage/x.c": "extern int y_var;\nint x_var = 1;\nint x_get(void) { return y_var; }\n",
         "lib/stage/y.c": "extern int x_var;\nint y_var = 2;\nint y_get(void) { return x_var; }\n"}),
     TABLE, 1, ["file loop in stage", "calls y_var", "calls x_var"]),
    ("loop between an inline header and the file that includes it",
     tree(CORE, APP, **{
         "lib/include/skygate/stage.h": "int stage_slow(int x);\n",
         "lib/include/skygate/stage_inline.h":
             '#include "skygate/stage.h"\n'
             "static inline int stage_fast(int x) { return x > 0 ? x : stage_slow(x); }\n",
         "lib/stage/stage.c": '#include "skygate/stage_inline.h"\n'
                              "int stage_slow(int x) { return -x; }\n"
                              "int stage_buf(int x) { return stage_fast(x); }\n",
         "gateway/main.c": '#include "skygate/stage_inline.h"\n'
                           "int main(void) { return stage_fast(1); }\n"}),
     TABLE, 1, ["file loop in stage", "stage_inline.h", "inline code uses stage_slow",
                "#include \"skygate/stage_inline.h\""]),
    ("three files in a ring",
     tree(CORE, STAGE, APP, **{
         "lib/stage/a.c": "int b_fn(void);\nint a_fn(void) { return b_fn(); }\n",
         "lib/stage/b.c": "int c_fn(void);\nint b_fn(void) { return c_fn(); }\n",
         "lib/stage/c.c": "int a_fn(void);\nint c_fn(void) { return a_fn() + 1; }\n"}),
     TABLE, 1, ["file loop in stage: a.c -> b.c (calls b_fn) -> c.c (calls c_fn) -> a.c "
                "(calls a_fn)"]),
    ("arrow against the table by a call (core calls up into a stage)",
     tree(STAGE, APP, **{
         "lib/include/skygate/base.h": "int core_fn(int x);\n",
         "lib/core/core.c": '#include "skygate/base.h"\nint stage_fn(int x);\n'
                            "int core_fn(int x) { return x ? stage_fn(x - 1) : 0; }\n"}),
     TABLE, 1, ["arrow against the table: core -> stage", "calls stage_fn", "core may use nothing",
                "module loop"]),
    ("arrow against the table between two stages",
     tree(CORE, STAGE, APP, **{
         "lib/other/other.c": "int stage_fn(int x);\nint other_fn(void) { return stage_fn(2); }\n"}),
     TABLE, 1, ["arrow against the table: other -> stage", "lib/other/other.c -> lib/stage/stage.c",
                "calls stage_fn"]),
    ("arrow against the table by an #include only",
     tree(CORE, STAGE, APP, **{
         "lib/other/other.c": '#include "skygate/stage.h"\nint other_fn(void) { return 2; }\n'}),
     TABLE, 1, ["arrow against the table: other -> stage", "#include \"skygate/stage.h\""]),
    ("private header of another folder",
     tree(CORE, STAGE, APP, **{
         "lib/stage/stage_priv.h": "#define STAGE_N 4\n",
         "lib/other/other.c": '#include "../stage/stage_priv.h"\n'
                              "int other_fn(void) { return STAGE_N; }\n"}),
     TABLE, 1, ["private header lib/stage/stage_priv.h", "included from lib/other/other.c"]),
    ("a loop in the table itself",
     tree(CORE, STAGE, APP),
     TABLE.replace("| `lib/core/` | `base.h` | — |", "| `lib/core/` | `base.h` | stage |"),
     1, ["the layering table has a loop"]),
    ("a public header the table does not place",
     tree(CORE, STAGE, APP, **{"lib/include/skygate/stray.h": "int stray;\n"}),
     TABLE, 2, ["stray.h", "does not place"]),
    ("an object that is not built",
     tree(CORE, STAGE, APP, **{"lib/stage/late.c": "int late_fn(void) { return 3; }\n"}),
     TABLE, 2, ["late.c.o", "not built"], ),
    ("a source file with no object",
     tree(CORE, STAGE, APP, **{"lib/stage/orphan.c": "int orphan_fn(void) { return 3; }\n"}),
     TABLE, 2, ["orphan.c", "not compiled"]),
    ("no table",
     tree(CORE, STAGE, APP), "no table here\n", 2, ["no layering table"]),
    # the clean tree: a header that implements, a public inline header used one way,
    # a program on top
    ("clean tree passes",
     tree(CORE, APP, **{
         "lib/include/skygate/stage.h": "int stage_slow(int x);\nint stage_buf(int x);\n"
                                        "#define STAGE_DBL(x) ((x) * 2)\n",
         "lib/include/skygate/stage_inline.h":
             '#include "skygate/stage.h"\n'
             "static inline int stage_fast(int x) { return x > 0 ? x : stage_slow(x); }\n",
         "lib/stage/stage_dp.c": '#include "skygate/stage.h"\n#include "skygate/base.h"\n'
                                 "int stage_slow(int x) { return core_fn(-x); }\n",
         "lib/stage/stage_buf.c": '#include "skygate/stage_inline.h"\n'
                                  "int stage_buf(int x) { return STAGE_DBL(stage_fast(x)); }\n",
         "gateway/main.c": '#include "skygate/stage_inline.h"\n'
                           "int main(void) { return stage_fast(1) + stage_buf(2); }\n"}),
     TABLE, 0, ["check-layers: ok"]),
]


def build(root, files, cc, unbuilt):
    for path, text in files.items():
        p = os.path.join(root, path)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as f:
            f.write(text)
    bdir = os.path.join(root, "build")
    os.makedirs(bdir)
    cmds = []
    for path in sorted(files):
        if not path.endswith(".c") or "orphan" in path:
            continue
        out = "obj/" + path.replace("/", "_") + ".o"
        args = [cc, "-I../lib/include", "-I..", "-c", "../" + path, "-o", out]
        cmds.append({"directory": bdir, "command": " ".join(args), "file": "../" + path,
                     "output": out})
        if path in unbuilt:
            continue
        os.makedirs(os.path.join(bdir, "obj"), exist_ok=True)
        subprocess.run(args, cwd=bdir, check=True)
    with open(os.path.join(bdir, "compile_commands.json"), "w") as f:
        json.dump(cmds, f)
    return bdir


def main():
    script = sys.argv[1]
    cc = sys.argv[2] if len(sys.argv) > 2 else "cc"
    failed = 0
    for i, (name, files, table, want_rc, want) in enumerate(CASES, 1):
        root = tempfile.mkdtemp(prefix="sky_layers_")
        try:
            with open(os.path.join(root, "ARCHITECTURE.md"), "w") as f:
                f.write(table)
            unbuilt = {p for p in files if "late" in p}
            bdir = build(root, files, cc, unbuilt)
            r = subprocess.run([sys.executable, script, "--source", root, "--build", bdir],
                               capture_output=True, text=True)
            out = r.stdout + r.stderr
            missing = [w for w in want if w not in out]
            ok = r.returncode == want_rc and not missing
            print(f"{'ok' if ok else 'not ok'} {i} - {name}")
            if not ok:
                failed += 1
                print(f"#   exit {r.returncode}, wanted {want_rc}; missing: {missing}")
                print("".join(f"#   {line}\n" for line in out.splitlines()), end="")
        finally:
            shutil.rmtree(root)
    print(f"1..{len(CASES)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
