"""Sign pseudo-random requests with the official Huawei Cloud Python SDK.

tests/sdk_interop.rs runs this script and checks that the Rust signer
produces the same Authorization header for every request. Each output line
is one JSON object:

    {"method", "host", "path", "query": [[k, v], ...],
     "headers": [[name, value], ...], "body", "ak", "sk",
     "authorization", "canonical_request"}

`headers` lists every header of the request after signing except
Authorization, so it includes what the SDK added (X-Sdk-Date, Host,
X-Project-Id, X-Security-Token, X-Sdk-Content-Sha256). A header that this
script supplied keeps its value from before signing, because the SDK strips
values in place while it signs. `canonical_request` is the text that the
SDK hashed, for diagnosing a mismatch.

All keys and tokens are generated fakes. Nothing is sent over the network.
"""

import argparse
import json
import random
import string
import sys
from datetime import datetime, timedelta

from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer

DEFAULT_COUNT = 300
DEFAULT_SEED = 20240115

HOSTS = [
    "127.0.0.1:8080",
    "127.0.0.1",
    "localhost:18443",
    "[::1]:8443",
    "gaussdb.cn-north-4.myhuaweicloud.com",
    "gaussdbformysql.ap-southeast-1.myhuaweicloud.com",
    "gaussdb-mysql.af-south-1.myhuaweicloud.com:443",
]

# Path segments that need encoding, some raw and some already percent-encoded.
# "%2F" decodes to a separator, "%zz" and a trailing "%" are not escapes, and
# "%FF" decodes to invalid UTF-8.
AWKWARD_SEGMENTS = [
    "a b",
    "a%20b",
    "a+b",
    "a*b",
    "a%2Fb",
    "a%2fb",
    "café",
    "caf%C3%A9",
    "caf%c3%a9",
    "数据库",
    "🙂",
    "~user",
    "a%7Eb",
    "100%",
    "%zz",
    "%FF",
    "a:b@c=d",
    "a;b,c",
    "(x)!'",
    "",
]

# Query values that need encoding, plus keys whose order differs between the
# decoded and the encoded form ("{", "[", "é" against plain letters).
AWKWARD_VALUES = [
    "",
    "a b",
    "*prod db",
    "a+b",
    "a/b",
    "a=b&c",
    "100%",
    "%2F",
    "~tilde",
    "é",
    "数据",
    "🙂",
    "x\ty",
    "a?b#c",
    "[1,2]",
    "{\"k\":1}",
]
QUERY_KEYS = ["limit", "offset", "name", "status", "a", "z", "A", "[", "{", "é", "key with space", "k~"]


def random_id(rng: random.Random, length: int, alphabet: str = string.hexdigits[:16]) -> str:
    return "".join(rng.choice(alphabet) for _ in range(length))


def random_path(rng: random.Random, project: str) -> str:
    instance = random_id(rng, 32) + "in07"
    kind = rng.random()
    if kind < 0.4:
        return f"/v3/{project}/instances/{instance}/backups/encryption"
    if kind < 0.55:
        return f"/v3.1/{project}/instances"
    segments = ["v3", project]
    for _ in range(rng.randint(1, 4)):
        segments.append(rng.choice(AWKWARD_SEGMENTS + ["instances", instance, "backups"]))
    path = "/" + "/".join(segments)
    if rng.random() < 0.2:
        path += "/"
    return path


def random_query(rng: random.Random) -> list:
    if rng.random() < 0.35:
        return []
    query = []
    for _ in range(rng.randint(1, 5)):
        key = rng.choice(QUERY_KEYS)
        if rng.random() < 0.3:
            value = str(rng.randint(0, 1000))
        else:
            value = rng.choice(AWKWARD_VALUES)
        query.append((key, value))
    return query


def random_headers(rng: random.Random, method: str) -> tuple:
    """Return the headers to sign and the body, as the SDK client would pass them."""
    headers = {}
    body = b""

    content_type = rng.choice(["application/json", "application/json;charset=UTF-8", None])
    if method != "GET" and rng.random() < 0.5:
        body = json.dumps({"encryption_status": rng.choice(["on", "off"])}).encode()
        if rng.random() < 0.3:
            content_type = "text/plain"
            body = "plain text body, é".encode()
    if content_type is not None:
        headers["Content-Type"] = content_type

    if rng.random() < 0.9:
        moment = datetime(2024, 1, 1) + timedelta(seconds=rng.randint(0, 3 * 365 * 86400))
        headers["X-Sdk-Date"] = moment.strftime("%Y%m%dT%H%M%SZ")
    if rng.random() < 0.5:
        headers["User-Agent"] = "huaweicloud-usdk-python/3.0"
    if rng.random() < 0.3:
        headers["X-Language"] = rng.choice(["en-us", "zh-cn"])
    if rng.random() < 0.25:
        headers["X_Trace_Id"] = random_id(rng, 16)
    if rng.random() < 0.2:
        headers["x-custom-HEADER"] = rng.choice([" padded value \t", "inner  space", "é value"])
    return headers, body


def fake_ak(rng: random.Random) -> str:
    return random_id(rng, 20, string.ascii_uppercase + string.digits)


def fake_sk(rng: random.Random) -> str:
    alphabet = string.ascii_letters + string.digits
    if rng.random() < 0.2:
        alphabet += "+/=-_é"
    return random_id(rng, 40, alphabet)


def fake_security_token(rng: random.Random) -> str:
    return random_id(rng, rng.randint(40, 120), string.ascii_letters + string.digits + "+/=")


class CanonicalRecorder:
    """Record the canonical request that the SDK's Signer hashes, without changing it."""

    def __init__(self):
        self.last = None
        original = Signer._process_string_to_sign

        def recording(signer, canonical_request, *args, **kwargs):
            self.last = canonical_request
            return original(signer, canonical_request, *args, **kwargs)

        Signer._process_string_to_sign = recording


def sign_one(rng: random.Random, recorder: CanonicalRecorder) -> dict:
    ak = fake_ak(rng)
    sk = fake_sk(rng)
    project = random_id(rng, 32)
    method = rng.choices(["GET", "POST", "PUT", "DELETE"], weights=[85, 5, 5, 5])[0]
    host = rng.choice(HOSTS)
    path = random_path(rng, project)
    query = random_query(rng)
    headers, body = random_headers(rng, method)
    supplied_headers = dict(headers)

    # BasicCredentials.sign_request adds X-Project-Id and X-Security-Token the
    # way the SDK client does, then calls Signer(credentials).sign(request).
    credentials = BasicCredentials(ak, sk, project if rng.random() < 0.8 else None)
    if rng.random() < 0.3:
        credentials.with_security_token(fake_security_token(rng))

    request = SdkRequest(
        method=method,
        schema="https",
        host=host,
        resource_path=path,
        query_params=list(query),
        header_params=headers,
        body=body,
    )
    request = credentials.sign_request(request)

    signed_headers = []
    for name, value in request.header_params.items():
        if name == "Authorization":
            continue
        signed_headers.append([name, supplied_headers.get(name, value)])

    return {
        "method": method,
        "host": host,
        "path": path,
        "query": [[key, value] for key, value in query],
        "headers": signed_headers,
        "body": body.decode("utf-8"),
        "ak": ak,
        "sk": sk,
        "authorization": request.header_params["Authorization"],
        "canonical_request": recorder.last,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("count", nargs="?", type=int, default=DEFAULT_COUNT,
                        help=f"number of requests to sign (default {DEFAULT_COUNT})")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED,
                        help=f"seed of the request generator (default {DEFAULT_SEED})")
    args = parser.parse_args()
    if args.count < 1:
        parser.error(f"count must be at least 1, got {args.count}")

    rng = random.Random(args.seed)
    recorder = CanonicalRecorder()
    for _ in range(args.count):
        print(json.dumps(sign_one(rng, recorder), ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
