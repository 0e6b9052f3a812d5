"""schemathesis hooks for .ci/fuzz-api: sign in as the fuzzing administrator, and again whenever the
session was ended by a request the fuzzer generated (a revoked session, a setup-token reset)."""

import json
import os
import time
import urllib.error
import urllib.request

import schemathesis


@schemathesis.auth(refresh_interval=60)
class SignIn:
    def get(self, case, ctx):
        body = json.dumps(
            {"login": "ict-desk", "password": os.environ["FUZZ_PASSWORD"], "session": "bearer"}
        ).encode()
        request = urllib.request.Request(
            os.environ["FUZZ_URL"] + "/api/v1/auth/login",
            data=body,
            headers={"content-type": "application/json"},
        )
        # A wrong password the fuzzer re-entered (POST /auth/reauthenticate) backs this login off briefly.
        for _ in range(20):
            try:
                with urllib.request.urlopen(request, timeout=10) as answer:
                    return json.load(answer)["token"]
            except urllib.error.HTTPError as refused:
                if refused.code != 429:
                    raise RuntimeError(f"sign-in refused: {refused.code} {refused.read()[:200]!r}") from None
                time.sleep(0.5)
        raise RuntimeError("sign-in still throttled after 10 s")

    def set(self, case, data, ctx):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"
