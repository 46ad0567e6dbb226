"""Runs schemathesis against the live broker's OpenAPI document: bounded
examples per operation and a hard time budget; fails on any 5xx or any
response that does not match the document's schema."""
import subprocess
import sys
import tempfile

from common import HTTP

max_examples = sys.argv[1] if len(sys.argv) > 1 else "20"
command = [
    sys.executable, "-m", "schemathesis.cli", "run", f"http://{HTTP}/api/v1/openapi.json",
    "--checks", "not_a_server_error,response_schema_conformance",
    "--max-examples", max_examples,
    "--max-time", "90",
    "--workers", "1",
    "--request-timeout", "10",
    "--phases", "examples,coverage,fuzzing",
    "--suppress-health-check", "all",
    "--seed", "1",
    "--generation-database", "none",
]
# Its cache goes to a scratch directory, not into the checkout.
with tempfile.TemporaryDirectory(prefix="conveyor-schemathesis-") as scratch:
    completed = subprocess.run(command, cwd=scratch, timeout=110)
sys.exit(completed.returncode)
