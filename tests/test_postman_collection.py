"""The Postman collection in docs/: the spec's calls, as the portal's sandbox serves them."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from django.test import Client
from django.urls import resolve

from generations import api_kinds
from generations.sandbox.urls import urlpatterns as sandbox_urlpatterns

COLLECTION_PATH = Path(__file__).resolve().parent.parent / "docs" / "pixverse.postman_collection.json"
SCHEMA = "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"

SPEC_CALLS = [
    ("GET", "openapi/v2/account/balance"),
    ("POST", "openapi/v2/video/text/generate"),
    ("POST", "openapi/v2/image/upload"),
    ("POST", "openapi/v2/video/img/generate"),
    ("GET", "openapi/v2/video/status"),
]
REAL_CALLS = [("GET", "openapi/v2/video/result/{{videoId}}")]
# The real platform's other calls (API-NOTES.md, section 3), by kind for the generate ones.
KIND_CALLS = {
    "transition": ("POST", "openapi/v2/video/transition/generate"),
    "extend": ("POST", "openapi/v2/video/extend/generate"),
    "sound_effect": ("POST", "openapi/v2/video/sound_effect/generate"),
    "lip_sync": ("POST", "openapi/v2/video/lip_sync/generate"),
    "fusion": ("POST", "openapi/v2/video/fusion/generate"),
}
OTHER_CALLS = [
    ("POST", "openapi/v2/media/upload"),
    ("GET", "openapi/v2/video/lip_sync/tts_list"),
    ("GET", "openapi/v2/video/tts_speaker"),
    ("GET", "openapi/v2/video/effects/templates/list"),
]
NEW_CALLS = [*KIND_CALLS.values(), *OTHER_CALLS]

# A 64-bit id as the real service hands them out: above 2^53, where JSON.parse rounds.
BIG_ID = "2354019100783543969"


def load() -> dict:
    return json.loads(COLLECTION_PATH.read_text(encoding="utf-8"))


def requests_in(items: list[dict], folder: str = "") -> list[tuple[str, dict]]:
    """Every request item as (folder name, item), folders walked to any depth."""
    found = []
    for item in items:
        if "item" in item:
            found += requests_in(item["item"], item["name"])
        else:
            found.append((folder, item))
    return found


def all_requests() -> list[dict]:
    return [item for _, item in requests_in(load()["item"])]


def path_of(item: dict) -> str:
    return "/".join(item["request"]["url"]["path"])


def find(method: str, path: str) -> dict:
    matches = [item for item in all_requests()
               if item["request"]["method"] == method and path_of(item) == path]
    assert len(matches) == 1, f"{method} {path}: {len(matches)} requests"
    return matches[0]


def script(item: dict, listen: str) -> str:
    events = [e for e in item.get("event", []) if e["listen"] == listen]
    return "\n".join(line for e in events for line in e["script"]["exec"])


def variables() -> dict[str, str]:
    return {v["key"]: v.get("value", "") for v in load()["variable"]}


def normalised(path: str) -> str:
    # Postman writes a path parameter as {{var}}, Django as <converter:name>.
    return re.sub(r"\{\{\w+\}\}|<(\w+:)?\w+>", "{}", path)


def test_it_is_a_postman_v2_1_collection():
    collection = load()
    assert collection["info"]["schema"] == SCHEMA
    assert collection["info"]["name"]
    assert collection["item"]


@pytest.mark.parametrize(("method", "path"), SPEC_CALLS)
def test_it_has_each_spec_call_with_its_method(method, path):
    find(method, path)


def test_the_real_result_call_sits_in_its_own_folder():
    folders = {(folder, item["request"]["method"], path_of(item))
               for folder, item in requests_in(load()["item"])}
    for method, path in REAL_CALLS + NEW_CALLS:
        assert ("Real service", method, path) in folders
    spec_folders = {folder for folder, method, path in folders if (method, path) in SPEC_CALLS}
    assert "Real service" not in spec_folders


@pytest.mark.parametrize(("method", "path"), NEW_CALLS)
def test_each_real_platform_call_is_there_with_its_key_and_the_shared_trace_id(method, path):
    item = find(method, path)
    headers = {h["key"]: h["value"] for h in item["request"]["header"] if not h.get("disabled")}
    assert headers["API-KEY"] == "{{apiKey}}"
    # Its ai-trace-id is the collection's pre-request script's, fresh on each send: no
    # script of its own and no header of its own that could send a fixed one.
    assert "ai-trace-id" not in {key.lower() for key in headers}
    assert script(item, "prerequest") == ""
    assert "headers.upsert({key: 'ai-trace-id'" in script(load(), "prerequest")


@pytest.mark.parametrize("kind", KIND_CALLS)
def test_each_generate_body_passes_the_clients_own_checks(kind):
    body = find(*KIND_CALLS[kind])["request"]["body"]
    assert body["mode"] == "raw"
    raw = body["raw"]
    for variable in ("imgId", "lastImgId", "videoId", "mediaId"):
        raw = raw.replace(f"{{{{{variable}}}}}", BIG_ID)
    sent = json.loads(raw)
    assert api_kinds.problems(kind, sent) == []


def test_the_media_upload_sends_a_file_field_named_file():
    body = find("POST", "openapi/v2/media/upload")["request"]["body"]
    assert body["mode"] == "formdata"
    assert [(f["key"], f["type"]) for f in body["formdata"]] == [("file", "file")]


def test_every_request_sends_the_api_key_from_the_api_key_variable():
    for item in all_requests():
        headers = {h["key"]: h["value"] for h in item["request"]["header"] if not h.get("disabled")}
        assert headers.get("API-KEY") == "{{apiKey}}", item["name"]


def test_every_request_has_a_description():
    for item in all_requests():
        assert item["request"].get("description", "").strip(), item["name"]


def test_every_url_is_built_on_the_base_url_and_its_raw_form_agrees():
    # Postman shows and re-parses `raw`; the parts are what runners send. They must say the same.
    for item in all_requests():
        url = item["request"]["url"]
        assert url["host"] == ["{{baseUrl}}"], item["name"]
        query = "&".join(f"{q['key']}={q['value']}" for q in url.get("query", []))
        assert url["raw"] == "{{baseUrl}}/" + "/".join(url["path"]) + (f"?{query}" if query else "")


def test_it_defines_the_base_url_and_api_key_variables():
    values = variables()
    assert values["baseUrl"] == "https://app-api.pixverse.ai"
    assert "apiKey" in values
    assert {"videoId", "imgId", "lastImgId", "mediaId"} <= values.keys()


def test_it_ships_without_a_key():
    assert variables()["apiKey"] == ""


def test_it_sends_a_fresh_trace_id_on_every_request():
    collection = load()
    prerequest = script(collection, "prerequest")
    assert re.search(r"headers\.upsert\(\s*\{\s*key:\s*'ai-trace-id'", prerequest)
    assert "require('uuid').v4()" in prerequest
    # A trace id written into a request would be sent again on every send, and PixVerse
    # answers a reused id with the earlier result.
    for item in all_requests():
        keys = {h["key"].lower() for h in item["request"]["header"]}
        assert "ai-trace-id" not in keys, item["name"]


def test_the_text_call_sends_the_spec_body():
    body = find("POST", "openapi/v2/video/text/generate")["request"]["body"]
    assert body["mode"] == "raw"
    assert body["options"]["raw"]["language"] == "json"
    assert json.loads(body["raw"]) == {"prompt": "A wolf in the snow", "duration": 5, "quality": "360p"}


def test_the_image_call_sends_the_uploaded_image_id_as_a_number():
    body = find("POST", "openapi/v2/video/img/generate")["request"]["body"]
    assert '"img_id": {{imgId}}' in body["raw"]
    sent = json.loads(body["raw"].replace("{{imgId}}", BIG_ID))
    assert sent["img_id"] == int(BIG_ID)
    assert sent["duration"] == 5
    assert sent["quality"] == "540p"
    assert sent["prompt"]


def test_the_upload_sends_the_image_as_a_file_field():
    body = find("POST", "openapi/v2/image/upload")["request"]["body"]
    assert body["mode"] == "formdata"
    assert [(f["key"], f["type"]) for f in body["formdata"]] == [("image", "file")]


def test_the_status_call_asks_for_the_stored_video_id():
    url = find("GET", "openapi/v2/video/status")["request"]["url"]
    assert url["query"] == [{"key": "video_id", "value": "{{videoId}}"}]


CREATING_CALLS = [
    ("openapi/v2/video/text/generate", "video_id", "videoId"),
    ("openapi/v2/video/img/generate", "video_id", "videoId"),
    ("openapi/v2/image/upload", "img_id", "imgId"),
    *[(path, "video_id", "videoId") for _, path in KIND_CALLS.values()],
    ("openapi/v2/media/upload", "media_id", "mediaId"),
]


@pytest.mark.parametrize(("path", "field", "variable"), CREATING_CALLS)
def test_the_creating_calls_store_the_returned_id(path, field, variable):
    test_script = script(find("POST", path), "test")
    assert f'"{field}"' in test_script
    assert f"pm.collectionVariables.set('{variable}'" in test_script


def test_its_paths_are_the_sandbox_routes():
    sandbox_routes = {normalised(str(p.pattern)) for p in sandbox_urlpatterns
                      if str(p.pattern).startswith("openapi/v2/")}
    collection_paths = {normalised(path_of(item)) for item in all_requests()}
    assert collection_paths == sandbox_routes


def test_the_sandbox_answers_each_path_under_sandbox():
    # So that baseUrl http://127.0.0.1:8000/sandbox points the collection at the sandbox.
    for item in all_requests():
        path = path_of(item).replace("{{videoId}}", BIG_ID)
        match = resolve(f"/sandbox/{path}")
        assert match.namespace == "sandbox", path


def test_the_sandbox_refuses_every_method_but_the_collections(client: Client):
    # The sandbox checks the method before it looks up the key, so no database is needed.
    for item in all_requests():
        method = item["request"]["method"]
        other = "POST" if method == "GET" else "GET"
        path = path_of(item).replace("{{videoId}}", BIG_ID)
        response = client.generic(other, f"/sandbox/{path}")
        assert response.status_code == 405, f"{other} {path}"


# --- The scripts, run by Node with a stand-in for Postman's `pm` ------------------------------

HARNESS = r"""
const assert = require('node:assert');
const crypto = require('node:crypto');
const input = JSON.parse(require('node:fs').readFileSync(0, 'utf8'));
const variables = {};
const headers = {};
const results = [];
const pm = {
  request: {headers: {upsert: ({key, value}) => { headers[key] = value; }}},
  response: {text: () => input.response, json: () => JSON.parse(input.response)},
  collectionVariables: {set: (key, value) => { variables[key] = value; }},
  test: (name, fn) => {
    try { fn(); results.push({name, passed: true}); }
    catch (e) { results.push({name, passed: false, error: String(e)}); }
  },
  expect: (actual) => ({to: {eql: (expected) => assert.deepStrictEqual(actual, expected)}}),
};
const sandboxRequire = (name) => {
  if (name === 'uuid') return {v4: () => crypto.randomUUID()};
  throw new Error(`Postman's sandbox has no module ${name}`);
};
new Function('pm', 'require', input.script)(pm, sandboxRequire);
process.stdout.write(JSON.stringify({variables, headers, results}));
"""


def run_script(source: str, response: str = "") -> dict:
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed")
    done = subprocess.run([node, "-e", HARNESS], input=json.dumps({"script": source, "response": response}),
                          capture_output=True, text=True, timeout=30, check=True)
    return json.loads(done.stdout)


@pytest.mark.slow
def test_the_pre_request_script_makes_a_new_uuid_each_time():
    prerequest = script(load(), "prerequest")
    first = run_script(prerequest)["headers"]["ai-trace-id"]
    second = run_script(prerequest)["headers"]["ai-trace-id"]
    uuid4 = r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
    assert re.match(uuid4, first)
    assert first != second


@pytest.mark.slow
@pytest.mark.parametrize(("path", "field", "variable"), CREATING_CALLS)
def test_the_stored_id_keeps_every_digit_of_a_64_bit_id(path, field, variable):
    answer = f'{{"ErrCode": 0, "ErrMsg": "success", "Resp": {{"{field}": {BIG_ID}}}}}'
    ran = run_script(script(find("POST", path), "test"), answer)
    assert ran["variables"] == {variable: BIG_ID}
    assert all(result["passed"] for result in ran["results"]), ran["results"]


@pytest.mark.slow
def test_an_error_answer_fails_the_test_and_stores_nothing():
    answer = '{"ErrCode": 500044, "ErrMsg": "Reached the limit for concurrent generations.", "Resp": null}'
    ran = run_script(script(find("POST", "openapi/v2/video/text/generate"), "test"), answer)
    assert ran["variables"] == {}
    assert not all(result["passed"] for result in ran["results"])
