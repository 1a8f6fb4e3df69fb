#!/usr/bin/env python3
"""man_coverage.py SRC YAML_MAN CTL_MAN HELP_JSON: the man pages document everything.

- every config key the parser accepts (tests/pkg/config_keys.py reads them from the C
  sources) is an entry of skygate.yaml(5), under its own section: `policy.jit`, not just
  some `.jit`;
- every entry of skygate.yaml(5) states its default and whether a reload applies it;
- every command of the daemon's table (`skygatectl --json help`) is an entry of
  skygatectl(8).
Reads the built roff (.TP entries), which is what `man` shows."""
import json
import re
import subprocess
import sys

src, yaml_man, ctl_man, help_json = sys.argv[1:5]

# where each key array of the parser sits in the config tree (a key must be documented
# under one of these prefixes); an array not listed here fails the test: add it
PREFIXES = {
    'lib/config/config_check.c:sky_cfg_sections': [''],
    'gateway/config.c:control_keys': ['control.'],
    'gateway/config.c:log_keys': ['log.'],
    'gateway/config.c:mempool_keys': ['mempool.'],
    'gateway/config.c:port_keys': ['ports[].'],
    'gateway/config.c:state_keys': ['state.'],
    'gateway/config.c:telemetry_keys': ['telemetry.'],
    'lib/classify/classify_cfg.c:class_keys': ['classes[].'],
    'lib/cluster/cluster_cfg.c:cluster_keys': ['cluster.'],
    'lib/classify/classify_cfg.c:match_keys': ['classes[].match[].'],
    'lib/geo/geo.c:keys': ['geo.'],
    'lib/ipfix/ipfix_cfg.c:ipfix_keys': ['ipfix.'],
    'lib/ipfix/ipfix_cfg.c:coll_keys': ['ipfix.collectors[].'],
    'lib/policy/policy_cfg.c:policy_keys': ['policy.'],
    'lib/shaper/shaper_cfg.c:keys': ['classes[].aqm.', 'shaping.'],
    'lib/flow/flow_cfg.c:keys': ['flows.'],
    'lib/subscriber/subscriber_cfg.c:keys': ['plans.NAME.', 'beams.NAME.', 'subscribers.'],
    'lib/quota/quota_cfg.c:over_keys': ['plans.NAME.over.'],
    'lib/quota/quota_cfg.c:peak_keys': ['plans.NAME.peak.'],
    'lib/quota/quota_cfg.c:quota_keys': ['quota.'],
    'lib/subscriber/subscriber_cfg.c:ukeys': ['subscribers.unknown.'],
    'lib/qoe/qoe_cfg.c:keys': ['qoe.'],
    'lib/qoe/qoe_cfg.c:gkeys': ['qoe.grade.'],
}


def roff_text(s):
    return re.sub(r'\\f[BIRP]|\\fC', '', s).replace('\\-', '-').replace('\\&', '')


def entries(path, section=None):
    """(tag line, body) of every .TP entry (in SECTION if given) of a roff page"""
    lines = open(path).read().split('\n')
    out, cur_sec = [], None
    for i, l in enumerate(lines):
        if l.startswith('.SH '):
            cur_sec = l[4:].strip().strip('"')
        if l == '.TP' and i + 1 < len(lines) and (section is None or cur_sec == section):
            body = []
            for b in lines[i + 2:]:
                if b.startswith('.'):
                    break
                body.append(b)
            out.append((lines[i + 1], roff_text(' '.join(body))))
    return out


errors = []

# config keys
documented = set()
for tag, body in entries(yaml_man, 'KEYS'):
    names = re.findall(r'\\fB([^\\]+)\\fP', tag.replace('\\&', ''))
    if not names:
        errors.append(f'skygate.yaml(5): entry without a bold key: {tag}')
        continue
    base = None
    for n in names:
        if n.startswith('.') and base is not None:
            n = base + n            # "**classes[].aqm.target**, **.interval**"
        else:
            base = n.rsplit('.', 1)[0] if '.' in n else ''
        documented.add(n)
    if 'default:' not in body or not re.search(r'on reload: (live|restart)', body):
        errors.append(f'skygate.yaml(5): {names[0]}: no default or no "on reload: live|restart"')
if len(documented) < 40:
    errors.append(f'skygate.yaml(5): only {len(documented)} keys documented: page parsed wrong?')
top = {d.split('.')[0].split('[')[0] for d in documented}

keys = subprocess.run([sys.executable, src + '/tests/pkg/config_keys.py', src], check=True,
                      capture_output=True, text=True).stdout.split('\n')
nkeys = 0
for line in filter(None, keys):
    where, key = line.split()
    nkeys += 1
    if where not in PREFIXES:
        errors.append(f'{where}: key array not mapped to a config section in man_coverage.py')
        continue
    if PREFIXES[where] == ['']:
        ok = key in top
    else:
        ok = any(p + key in documented for p in PREFIXES[where])
    if not ok:
        errors.append(f'config key {key!r} ({where}) is not documented in skygate.yaml(5) '
                      f'under {" or ".join(p + key for p in PREFIXES[where])}')

# commands
cmds = [c['command'] for c in json.load(open(help_json))]
if len(cmds) < 20:
    errors.append(f'only {len(cmds)} commands from help: {cmds}')
ctl_entries = {re.match(r'\\fB([^\\]+)\\fP', t).group(1) for t, _ in entries(ctl_man, 'COMMANDS')
               if t.startswith('\\fB')}
for c in cmds:
    if c not in ctl_entries:
        errors.append(f'command {c!r} (skygatectl help) is not documented in skygatectl(8)')

for e in errors:
    print('FAIL:', e)
print(f'{nkeys} parser keys, {len(documented)} documented keys, {len(cmds)} commands checked')
sys.exit(1 if errors else 0)
