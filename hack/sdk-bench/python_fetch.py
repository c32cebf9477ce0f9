#!/usr/bin/env python3
"""CPU benchmark, Python side: N quota fetches with the official SDK against a local endpoint.

Usage (inside the venv made by hack/gen-vectors.sh, i.e. ~/.cache/cloudquota/venv-vectors or $CLOUDQUOTA_VENV):

    python hack/sdk-bench/python_fetch.py --service ims --endpoint http://127.0.0.1:18080 \
        --ak AK --sk SK --project-id PID -n 1000

Prints one JSON line:
    {"service": "ims", "fetches": N, "failures": 0, "cpu_seconds": ..., "wall_seconds": ...}
cpu_seconds is time.process_time() (all threads of this process: the Huawei SDK signs on a
thread pool) over the N fetches only; client construction and --warmup fetches are excluded.
Exit status is 1 if any fetch failed.

Services and the SDK call each fetch makes:
    ims       ImsClient.show_image_quota              GET /v1/cloudimages/quota (+ X-Project-Id)
    dws       DwsClient.list_quotas                   GET /v1.0/{project_id}/quotas
    evs       EvsClient.cinder_list_quotas(usage=true) GET /v2/{project_id}/os-quota-sets/{project_id}?usage=true
    zenlayer  VmClient.DescribeImageQuota             POST /api/v2/vm (x-zc-action: DescribeImageQuota)

Plain http and no retries: Huawei clients take the endpoint URL as given (an endpoint starting
with "http" keeps its scheme), HttpConfig.ignore_ssl_verification=True and retry_times=0 (the
default; it only retries 429 anyway); a project id is passed so the SDK never calls IAM. Zenlayer
takes Config(scheme="http", domain="host:port", certification=False, rate_limit_max_retries=0).
Proxies from the environment are bypassed for the endpoint host (NO_PROXY).
"""

import argparse
import json
import os
import sys
import tempfile
import time
from urllib.parse import urlparse


def _no_proxy_for(host):
    for var in ("NO_PROXY", "no_proxy"):
        current = os.environ.get(var, "")
        entries = [e for e in current.split(",") if e]
        if host not in entries:
            entries.append(host)
        os.environ[var] = ",".join(entries)


def build_huawei(service, endpoint, ak, sk, project_id, token):
    from huaweicloudsdkcore.auth.credentials import BasicCredentials
    from huaweicloudsdkcore.http.http_config import HttpConfig

    config = HttpConfig.get_default_config()
    config.ignore_ssl_verification = True
    config.retry_times = 0
    config.timeout = (5, 30)
    # A fixed User-Agent suffix; the default one probes the platform and writes
    # ~/.huaweicloud/application_id on first use.
    config.user_agent = "cloudquota-sdk-bench"
    creds = BasicCredentials(ak, sk, project_id)
    if token:
        creds.with_security_token(token)

    if service == "ims":
        from huaweicloudsdkims.v2 import ImsClient, ShowImageQuotaRequest

        client = ImsClient.new_builder().with_http_config(config).with_credentials(creds) \
            .with_endpoint(endpoint).build()
        return lambda: client.show_image_quota(ShowImageQuotaRequest())
    if service == "dws":
        from huaweicloudsdkdws.v2 import DwsClient, ListQuotasRequest

        client = DwsClient.new_builder().with_http_config(config).with_credentials(creds) \
            .with_endpoint(endpoint).build()
        return lambda: client.list_quotas(ListQuotasRequest())
    if service == "evs":
        from huaweicloudsdkevs.v2 import CinderListQuotasRequest, EvsClient

        client = EvsClient.new_builder().with_http_config(config).with_credentials(creds) \
            .with_endpoint(endpoint).build()
        return lambda: client.cinder_list_quotas(
            CinderListQuotasRequest(target_project_id=project_id, usage="true"))
    raise ValueError(service)


def build_zenlayer(endpoint, ak, sk, token, api_version, zone_ids):
    from zenlayercloud.common.config import Config
    from zenlayercloud.common.credential import Credential, TokenCredential

    if api_version == "2023-03-13":
        from zenlayercloud.vm.v20230313 import models
        from zenlayercloud.vm.v20230313.vm_client import VmClient
    else:
        from zenlayercloud.vm.v20260401 import models
        from zenlayercloud.vm.v20260401.vm_client import VmClient

    url = urlparse(endpoint)
    config = Config(scheme=url.scheme or "https", domain=url.netloc or endpoint, request_timeout=30,
                    certification=False, rate_limit_max_retries=0)
    cred = TokenCredential(token) if token else Credential(ak, sk)
    client = VmClient(cred, config)

    def fetch():
        req = models.DescribeImageQuotaRequest()
        req.zoneIds = zone_ids
        return client.DescribeImageQuota(req)

    return fetch


def main():
    ap = argparse.ArgumentParser(description="N official-SDK quota fetches; prints CPU/wall time.")
    ap.add_argument("--service", required=True, choices=["ims", "dws", "evs", "zenlayer"])
    ap.add_argument("--endpoint", required=True, help="e.g. http://127.0.0.1:18080")
    ap.add_argument("--ak", required=True, help="access key (id)")
    ap.add_argument("--sk", required=True, help="secret key (Zenlayer: access key password)")
    ap.add_argument("--project-id", default=None,
                    help="Huawei project id (required for dws/evs; sets X-Project-Id)")
    ap.add_argument("--security-token", default=None,
                    help="Huawei X-Security-Token / Zenlayer bearer token (then --ak/--sk unused)")
    ap.add_argument("-n", "--fetches", type=int, default=100)
    ap.add_argument("--warmup", type=int, default=1, help="unmeasured fetches first (default 1)")
    ap.add_argument("--zenlayer-version", default="2026-04-01", choices=["2026-04-01", "2023-03-13"])
    ap.add_argument("--zone-id", action="append", default=None, help="Zenlayer zoneIds (repeatable)")
    ap.add_argument("--show-response", action="store_true", help="print the first response (stderr)")
    args = ap.parse_args()

    if args.fetches < 1:
        ap.error("--fetches must be >= 1")
    if args.service in ("dws", "evs") and not args.project_id:
        ap.error("--project-id is required for %s (it is part of the path)" % args.service)

    os.environ.setdefault("HOME", tempfile.gettempdir())
    host = urlparse(args.endpoint).hostname
    if host:
        _no_proxy_for(host)

    if args.service == "zenlayer":
        fetch = build_zenlayer(args.endpoint, args.ak, args.sk, args.security_token,
                               args.zenlayer_version, args.zone_id)
    else:
        fetch = build_huawei(args.service, args.endpoint, args.ak, args.sk, args.project_id,
                             args.security_token)

    failures = 0
    first_error = None

    def one():
        nonlocal failures, first_error
        try:
            return fetch()
        except Exception as e:  # the SDKs raise their own exception types
            failures += 1
            if first_error is None:
                first_error = "%s: %s" % (type(e).__name__, e)
            return None

    for i in range(args.warmup):
        resp = one()
        if i == 0 and args.show_response:
            print(resp, file=sys.stderr)
    failures, first_error = 0, None

    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(args.fetches):
        one()
    cpu1, wall1 = time.process_time(), time.perf_counter()

    out = {
        "service": args.service,
        "fetches": args.fetches,
        "failures": failures,
        "cpu_seconds": round(cpu1 - cpu0, 6),
        "wall_seconds": round(wall1 - wall0, 6),
    }
    if first_error:
        out["first_error"] = first_error[:500]
    print(json.dumps(out))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
