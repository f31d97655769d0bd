"""The probe's release command: ``release_sleep`` seconds, then ``release_exit`` as status."""

import json
import sys
import time
from pathlib import Path

BEHAVIOUR = json.loads((Path(__file__).parent / "behaviour.json").read_text())

print(f"release: migrating {BEHAVIOUR.get('marker', '')}", flush=True)
time.sleep(BEHAVIOUR.get("release_sleep", 0))
status = int(BEHAVIOUR.get("release_exit", 0))
if status:
    print(f"release: migration failed with status {status}", flush=True)
sys.exit(status)
