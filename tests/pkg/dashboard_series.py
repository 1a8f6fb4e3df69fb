#!/usr/bin/env python3
"""dashboard_series.py DASHBOARD.json METRICS.txt: every series the Grafana dashboard
queries exists in skygate's Prometheus output, with every label the query selects or
groups by (`instance` and `job` are added by Prometheus when it scrapes, so they are not
expected). Also: the dashboard parses, every panel has a query, panel ids are unique, and
the panels the dashboard promises (throughput per port, drops by reason, beam
utilisation, shaper queue, blocked traffic per country pair, worker busy share) are
there."""
import json
import re
import sys

dash = json.load(open(sys.argv[1]))
samples = {}  # metric -> set of label names seen on its samples
for line in open(sys.argv[2]):
    if line.startswith('#') or not line.strip():
        continue
    m = re.match(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s', line)
    if not m:
        sys.exit(f'unparsable metrics line: {line!r}')
    labels = set(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="', m.group(3) or ''))
    samples.setdefault(m.group(1), set()).update(labels)

SCRAPE = {'instance', 'job'}
FUNCS = {'rate', 'increase', 'sum', 'by', 'on', 'ignoring', 'without', 'avg', 'max', 'min',
         'count', 'topk', 'irate', 'label_values', 'group_left', 'group_right', 'offset'}
errors, queried = [], set()
ids = [p['id'] for p in dash['panels']]
if len(ids) != len(set(ids)):
    errors.append(f'panel ids repeat: {ids}')
exprs = []
for p in dash['panels']:
    if not p.get('targets'):
        errors.append(f'panel {p["title"]!r} has no query')
    for t in p.get('targets', []):
        exprs.append((p['title'], t['expr']))
for v in dash.get('templating', {}).get('list', []):
    q = v.get('query')
    if isinstance(q, dict):
        exprs.append((f'variable {v["name"]}', q['query']))
for title, e in exprs:
    body = re.sub(r'\$\{?\w+\}?', 'X', e)  # Grafana variables
    metrics = set(re.findall(r'\bskygate_[a-z0-9_]+', body))
    if not metrics:
        errors.append(f'{title}: query names no skygate series: {e}')
    # labels: in selectors {a="..", b=~".."}, in by (...)/on (...), in label_values(m, l)
    labels = set()
    for sel in re.findall(r'\{([^}]*)\}', body):
        labels |= set(re.findall(r'([a-zA-Z_]\w*)\s*(?:=~|!=|!~|=)', sel))
    for grp in re.findall(r'\b(?:by|on|without|ignoring)\s*\(([^)]*)\)', body):
        labels |= {x.strip() for x in grp.split(',') if x.strip()}
    for lv in re.findall(r'label_values\(\s*\w+\s*,\s*(\w+)\s*\)', body):
        labels.add(lv)
    labels -= SCRAPE
    for m in metrics:
        queried.add(m)
        if m not in samples:
            errors.append(f'{title}: series {m} is not in `skygatectl metrics`')
            continue
    # each label must be carried by at least one metric of the query
    for lab in labels:
        if not any(lab in samples.get(m, set()) for m in metrics):
            errors.append(f'{title}: label {lab!r} is on none of {sorted(metrics)}')
titles = ' | '.join(p['title'].lower() for p in dash['panels'])
for must in ['throughput per port', 'drops by reason', 'beam utilisation', 'shaper queue',
             'terminal country x remote country', 'worker busy share']:
    if must not in titles:
        errors.append(f'no panel for {must!r}')
for e in errors:
    print('FAIL:', e)
print(f'{len(exprs)} queries, {len(queried)} series, all present' if not errors else
      f'{len(errors)} problems')
sys.exit(1 if errors else 0)
