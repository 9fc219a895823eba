"""Query backup encryption status through the official Huawei Cloud Python SDK.

Calls DescribeBackupEncryptStatus with the SDK's GaussDB for MySQL client
(huaweicloudsdkgaussdb.v3.GaussDBClient) against a local simulator, so a test
can check that the simulator accepts the SDK's requests and that the SDK
parses the simulator's responses. It prints one JSON line per instance:

    {"instance_id": "...", "encryption_status": "on"}
    {"instance_id": "...", "error": {"status_code": 404, "error_code": "...", "error_msg": "..."}}

A request that gets no HTTP response prints `"status_code": null` and makes
the script exit with status 1 after all instances.

The endpoint must be a literal loopback address (127.0.0.0/8 or ::1). In
huaweicloudsdkcore 3.1.219, a client built without a region and with an
explicit project id never requests the project id from IAM, and non-empty
AK/SK keep it from requesting temporary keys from the metadata service.
Proxy settings from the environment are dropped so that requests go
straight to the endpoint.
"""

import argparse
import ipaddress
import json
import os
import sys
from urllib.parse import urlsplit

PROXY_VARIABLES = ["http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"]


def loopback_endpoint(value: str) -> str:
    """Return `value` if it is an http(s) URL on a literal loopback address, else raise."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https"):
        raise argparse.ArgumentTypeError(f"endpoint {value!r} must start with http:// or https://")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise argparse.ArgumentTypeError(f"endpoint {value!r} must be scheme, address and port only")
    try:
        address = ipaddress.ip_address(parts.hostname or "")
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"endpoint {value!r} must use a literal loopback address such as 127.0.0.1, not a host name"
        ) from None
    if not address.is_loopback:
        raise argparse.ArgumentTypeError(f"endpoint {value!r} is not a loopback address")
    try:
        parts.port
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"endpoint {value!r} has an invalid port: {error}") from None
    return value.rstrip("/")


def non_empty(value: str) -> str:
    if not value:
        raise argparse.ArgumentTypeError("must not be empty")
    return value


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", required=True, type=loopback_endpoint,
                        help="simulator URL, e.g. http://127.0.0.1:8080 (loopback only)")
    parser.add_argument("--ak", required=True, type=non_empty, help="access key id")
    parser.add_argument("--sk", required=True, type=non_empty, help="secret access key")
    parser.add_argument("--security-token", help="security token of temporary keys")
    parser.add_argument("--project", required=True, type=non_empty, help="project id")
    parser.add_argument("--instance", required=True, action="append", type=non_empty,
                        help="instance id; repeat for more instances")
    parser.add_argument("--timeout", type=float, default=30.0,
                        help="connect and read timeout in seconds (default 30)")
    parser.add_argument("--dry-run", action="store_true",
                        help="build the client and the requests, print them, and send nothing")
    return parser.parse_args()


def build_client(args: argparse.Namespace):
    from huaweicloudsdkcore.auth.credentials import BasicCredentials
    from huaweicloudsdkcore.http.http_config import HttpConfig
    from huaweicloudsdkgaussdb.v3 import GaussDBClient

    credentials = BasicCredentials(args.ak, args.sk, args.project)
    if args.security_token:
        credentials.with_security_token(args.security_token)

    config = HttpConfig.get_default_config()
    config.timeout = (args.timeout, args.timeout)
    config.retry_times = 0

    # No with_region(): a region would add its cloud endpoints to the list.
    return (
        GaussDBClient.new_builder()
        .with_http_config(config)
        .with_credentials(credentials)
        .with_endpoints([args.endpoint])
        .build()
    )


def describe(client, instance_id: str) -> tuple:
    """Return the output object for one instance and whether an HTTP response arrived."""
    from huaweicloudsdkcore.exceptions.exceptions import SdkException, ServiceResponseException
    from huaweicloudsdkgaussdb.v3 import DescribeBackupEncryptStatusRequest

    request = DescribeBackupEncryptStatusRequest(instance_id=instance_id)
    try:
        response = client.describe_backup_encrypt_status(request)
    except ServiceResponseException as error:
        failure = {
            "status_code": error.status_code,
            "error_code": error.error_code,
            "error_msg": error.error_msg,
        }
        return {"instance_id": instance_id, "error": failure}, True
    except SdkException as error:
        failure = {
            "status_code": None,
            "error_code": None,
            "error_msg": f"{type(error).__name__}: {error.error_msg}",
        }
        return {"instance_id": instance_id, "error": failure}, False
    return {"instance_id": instance_id, "encryption_status": response.encryption_status}, True


def main() -> int:
    args = parse_arguments()
    for variable in PROXY_VARIABLES:
        os.environ.pop(variable, None)
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = "*"

    client = build_client(args)

    if args.dry_run:
        from huaweicloudsdkgaussdb.v3 import DescribeBackupEncryptStatusRequest

        for instance_id in args.instance:
            request = DescribeBackupEncryptStatusRequest(instance_id=instance_id)
            planned = {"client": type(client).__name__, "endpoint": args.endpoint, "request": request.to_dict()}
            print(json.dumps(planned))
        return 0

    all_answered = True
    for instance_id in args.instance:
        result, answered = describe(client, instance_id)
        all_answered = all_answered and answered
        print(json.dumps(result, ensure_ascii=False), flush=True)
    return 0 if all_answered else 1


if __name__ == "__main__":
    sys.exit(main())
