"""Write tests/fixtures/gharchive/webhook-examples.json.gz: GitHub's own example payloads of the five
events the issue and pull-request sources read, from the npm package @octokit/webhooks-examples
(MIT; "Example webhook payloads contributed by the community", github:octokit/webhooks).

The tests wrap them in the Events-API envelope GHArchive stores (tests/data/gharchive/helpers.py).
Usage (npm needs network access to the npm registry):

    python scripts/gharchive_fixture.py            # npm pack, extract, write the fixture
    python scripts/gharchive_fixture.py INDEX.json # from an extracted package's api.github.com/index.json
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

PACKAGE = "@octokit/webhooks-examples@7.6.1"
OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "gharchive" / "webhook-examples.json.gz"
# webhook name -> the actions whose examples are kept (one example each, the first)
WANTED = {
    "issues": ["opened", "reopened", "edited", "labeled"],  # no "closed" example: tests set the action
    "issue_comment": ["created", "edited", "deleted"],
    "pull_request": ["opened", "closed", "reopened", "synchronize"],
    "pull_request_review": ["submitted", "dismissed"],
    "pull_request_review_comment": ["created", "edited", "deleted"],
}


def index_from_npm() -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["npm", "pack", PACKAGE, "--silent"], cwd=tmp, check=True, capture_output=True)
        tarball = next(Path(tmp).glob("*.tgz"))
        with tarfile.open(tarball) as tar:
            member = tar.extractfile("package/api.github.com/index.json")
            assert member is not None
            return json.load(member)


def main() -> None:
    index = json.loads(Path(sys.argv[1]).read_text()) if len(sys.argv) > 1 else index_from_npm()
    rows = []
    for webhook in index:
        actions = WANTED.get(webhook["name"], [])
        for action in actions:
            example = next((e for e in webhook["examples"] if e.get("action") == action), None)
            if example is None:
                raise SystemExit(f"{PACKAGE}: no {webhook['name']}.{action} example")
            rows.append({"webhook": webhook["name"], "payload": example})
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(OUT, "wt", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, sort_keys=True) + "\n")
    print(f"{OUT}: {len(rows)} examples")


if __name__ == "__main__":
    main()
