#!/usr/bin/env python3
"""Extracts the example responses of the five seed API documents into tests/fixtures/.

Usage: hack/extract-seed-fixtures.py [SEEDS_DIR]  (default: ../shared/seeds)
The documents are Markdown/HTML; each example is the JSON object around a known key.
"""
import glob
import json
import os
import re
import sys

here = os.path.dirname(os.path.abspath(__file__))
seeds = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "..", "shared", "seeds")
out_dir = os.path.join(here, "..", "tests", "fixtures")


def extract(text, key):
    i = text.index(key)
    start = text.rindex("{", 0, i)
    depth = 0
    for j in range(start, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[start : j + 1]
    raise ValueError(key)


files = sorted(glob.glob(os.path.join(seeds, "*")))
wanted = [
    ("seed_000_ims.json", '"quotas"'),
    ("seed_001_ims.json", '"quotas"'),
    ("seed_002_dws.json", '"quotas" :'),
    ("seed_003_evs.json", '"quota_set"'),
    ("seed_004_zenlayer.json", '"requestId": "T4C'),
]
for path, (name, key) in zip(files, wanted):
    text = re.sub(r"<[^>]*>", "", open(path, encoding="utf-8").read())
    obj = json.loads(extract(text, key))
    with open(os.path.join(out_dir, name), "w", encoding="utf-8") as f:
        f.write(json.dumps(obj, indent=2, ensure_ascii=False) + "\n")
    print(name)
