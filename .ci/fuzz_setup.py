"""Seeds the server .ci/fuzz-api fuzzes, through its own API: an attending physician with a patient group
(consent recorded, one post), a nurse of another station who is not a member (the second identity of the
authorization checks), and a nurse the administrator's operations on accounts may disable, reset or
sign out. Writes the Web Fuzzing Commons file schemathesis signs in with, and prints the ids of two
groups: one to work in, one to archive, hand over and leave.

    python3 .ci/fuzz_setup.py URL ADMIN_PASSWORD WFC_FILE
"""

import datetime
import json
import sys
import urllib.request

URL, ADMIN_PASSWORD, WFC_FILE = sys.argv[1:4]
PASSWORD = "a long password for fuzzing"


def call(method, path, body=None, token=None):
    request = urllib.request.Request(URL + path, method=method)
    if body is not None:
        request.data = json.dumps(body).encode()
        request.add_header("content-type", "application/json")
    if token:
        request.add_header("authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as answer:
        text = answer.read()
        return json.loads(text) if text else None


def sign_in(login, password):
    return call("POST", "/api/v1/auth/login", {"login": login, "password": password, "session": "bearer"})["token"]


admin = sign_in("ict-desk", ADMIN_PASSWORD)
for login, name, profession, organisation in [
    ("fuzz-physician", "内科 太郎", "physician", "ファズ診療所"),
    ("fuzz-outsider", "訪問 花子", "nurse", "別の訪問看護ステーション"),
    ("fuzz-target", "対象 次郎", "nurse", "別の訪問看護ステーション"),
]:
    call("POST", "/api/v1/admin/users", {
        "login": login, "display_name": name, "profession": profession, "organisation": organisation,
        "phone": "0422-00-0000", "role": "member", "initial_password": "an initial password 1",
    }, admin)
    first = sign_in(login, "an initial password 1")
    call("POST", "/api/v1/me/password",
         {"current_password": "an initial password 1", "new_password": PASSWORD}, first)

physician = sign_in("fuzz-physician", PASSWORD)
groups = []
for label in ["ファズ用グループ", "ファズ用グループ（終了用）"]:
    group = call("POST", "/api/v1/groups", {"label": label, "patient": {"full_name": "試験 患者"}}, physician)
    call("POST", f"/api/v1/groups/{group['id']}/consents", {
        "consenter": {"kind": "patient", "name": "試験 患者"}, "method": "written",
        "obtained_on": datetime.date.today().isoformat(), "scope": [{"organisation": "ファズ診療所"}],
    }, physician)
    call("POST", f"/api/v1/groups/{group['id']}/posts", {
        "kind": "update", "body": "本日の訪問: 変わりなし", "client_msg_id": "fuzz-seed-1",
    }, physician)
    groups.append(group["id"])


def user(name, login, password):
    return {
        "name": name,
        "loginEndpointAuth": {
            "endpoint": "/api/v1/auth/login", "verb": "POST", "contentType": "application/json",
            "payloadRaw": json.dumps({"login": login, "password": password, "session": "bearer"}),
            "token": {"extractFrom": "body", "extractSelector": "/token", "sendIn": "header",
                      "sendName": "Authorization", "sendTemplate": "Bearer {token}"},
        },
    }


# In this order: an operation refused (401/403) to one identity is tried with the next.
with open(WFC_FILE, "w") as out:
    json.dump({"schemaVersion": "0.1.0", "auth": [
        user("physician", "fuzz-physician", PASSWORD),
        user("admin", "ict-desk", ADMIN_PASSWORD),
        user("outsider", "fuzz-outsider", PASSWORD),
    ]}, out)
print(*groups)
