"""A real S3-compatible server for the tests: moto's server on a free port of 127.0.0.1, started by the fixture and
stopped after. The lake's data go there through DuckDB's httpfs exactly as to AWS S3, MinIO or Ceph (no network
here to try those); the keys are made up per test session and given only through the environment.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from rootassets_tests.postgres import _free_port


@dataclass(frozen=True)
class ObjectStorage:
    """A running S3-compatible endpoint and the keys that open it."""

    endpoint: str
    key_id: str
    secret: str

    def environment(self) -> dict[str, str]:
        """The standard AWS variables a user sets: httpfs and boto3 both read them."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret,
            "AWS_REGION": "us-east-1",
        }

    def client(self):  # noqa: ANN201 - boto3's client type is generated
        import boto3

        env = self.environment()
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            region_name=env["AWS_REGION"],
        )

    def create_bucket(self) -> str:
        name = f"lake-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def objects(self, bucket: str) -> dict[str, bytes]:
        client = self.client()
        keys = [
            o["Key"]
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
            for o in page.get("Contents", [])
        ]
        return {key: client.get_object(Bucket=bucket, Key=key)["Body"].read() for key in keys}


@pytest.fixture(scope="session")
def object_storage() -> Iterator[ObjectStorage]:
    """One S3-compatible server per test session (per xdist worker); each test makes its own bucket."""
    server = Path(sys.executable).parent / "moto_server"
    if not server.exists():
        pytest.fail(f"moto's server is required ({server}): pip install -e '.[dev]'")
    port = _free_port()
    process = subprocess.Popen(
        [str(server), "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(endpoint, timeout=2)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"moto's S3 server did not start on {endpoint}")
                time.sleep(0.2)
        yield ObjectStorage(endpoint, key_id="rootassets-test", secret=f"secret-{uuid.uuid4().hex}")
    finally:
        process.terminate()
        process.wait(timeout=30)
