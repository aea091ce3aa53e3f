"""Media on S3-compatible storage (django-storages), against moto's in-process S3.

The bucket stays private: the portal checks who may see a job, then sends the
member to a link signed for a few minutes; stored videos and deleted jobs
reach the bucket through the same storage as on disk.
"""

from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
import responses
from django.core.files.base import ContentFile
from django.test import Client
from django.urls import reverse
from moto import mock_aws

from generations import jobs
from generations.models import Generation

BUCKET = "portal-media"
S = Generation.Status


@pytest.fixture
def bucket(settings, monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        settings.STORAGES = {**settings.STORAGES, "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {"bucket_name": BUCKET, "region_name": "us-east-1", "querystring_auth": True,
                        "querystring_expire": 300, "default_acl": None, "file_overwrite": False,
                        "signature_version": "s3v4"},
        }}
        yield s3


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice", password="pw-alice-123")


@pytest.fixture
def as_alice(client, alice):
    client.force_login(alice)
    return client


def make_generation(owner, **fields):
    return Generation.objects.create(owner=owner, kind="text", prompt="A wolf", model="v5", quality="360p",
                                     duration=5, credits=45, **fields)


def keys(s3) -> set[str]:
    return {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])}


def test_a_member_is_sent_to_a_short_signed_link_of_the_private_bucket(as_alice, alice, bucket):
    generation = make_generation(alice, status=S.DONE, video_id=99)
    generation.video_file.save("v.mp4", ContentFile(b"\x00\x00\x00\x18ftypmp42"), save=True)
    assert keys(bucket) == {generation.video_file.name}

    response = as_alice.get(reverse("video", args=[generation.code]) + "?download=1")
    assert response.status_code == 302
    assert response["Cache-Control"] == "private, no-store"
    link = urlsplit(response["Location"])
    query = parse_qs(link.query)
    assert BUCKET in link.netloc + link.path and link.path.endswith(generation.video_file.name)
    assert query["X-Amz-Expires"] == ["300"] and "X-Amz-Signature" in query
    assert query["response-content-type"] == ["video/mp4"]
    assert query["response-content-disposition"][0].startswith('attachment; filename="pixverse-99.mp4"')


def test_nobody_gets_a_link_to_someone_elses_private_job(alice, bucket, django_user_model):
    generation = make_generation(alice, status=S.DONE, video_id=99, is_private=True)
    generation.video_file.save("v.mp4", ContentFile(b"video"), save=True)
    bob = Client()
    bob.force_login(django_user_model.objects.create_user("bob"))
    assert bob.get(reverse("video", args=[generation.code])).status_code == 404


@responses.activate
def test_a_finished_video_is_stored_in_the_bucket_and_leaves_with_its_job(
        alice, bucket, django_capture_on_commit_callbacks):
    video = b"\x00\x00\x00\x18ftypmp42" + b"\x01" * 50_000
    responses.get("https://cdn.pixverse.test/v.mp4", body=video)
    generation = make_generation(alice, status=S.DONE, video_id=7, video_url="https://cdn.pixverse.test/v.mp4")
    assert jobs.store_video(generation.pk) is True
    generation.refresh_from_db()
    stored = bucket.get_object(Bucket=BUCKET, Key=generation.video_file.name)["Body"].read()
    assert stored == video

    with django_capture_on_commit_callbacks(execute=True):
        generation.delete()
    assert keys(bucket) == set()
