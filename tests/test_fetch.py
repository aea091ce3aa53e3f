"""Which video links the worker fetches (generations/fetch.py) and how a refused one is treated."""

import pytest

from generations import jobs
from generations.fetch import UnsafeURL, check_video_url
from generations.models import Generation
from tests.test_jobs import BASE, alice, api, client, done, ok, queued, reload, running  # noqa: F401

PUBLIC = "93.184.216.34"


@pytest.mark.parametrize("url", [
    f"https://{PUBLIC}/v.mp4",
    "https://cdn.pixverse.test/v.mp4",  # does not resolve here: nothing to fetch, nothing to fear
])
def test_https_links_to_public_hosts_are_fetched(url):
    check_video_url(url)


@pytest.mark.parametrize("url", [
    f"http://{PUBLIC}/v.mp4",  # plain http while PixVerse itself is https
    "ftp://cdn.pixverse.test/v.mp4",
    "file:///etc/passwd",
    "https://127.0.0.1/v.mp4",
    "https://10.1.2.3/v.mp4",
    "https://169.254.169.254/latest/meta-data/",
    "https://[::1]/v.mp4",
    "https://localhost/v.mp4",
    f"https://user:secret@{PUBLIC}/v.mp4",
])
def test_other_links_are_refused(url):
    with pytest.raises(UnsafeURL):
        check_video_url(url)


def test_the_local_run_fetches_the_sandbox_on_loopback(settings):
    settings.PIXVERSE_BASE_URL = "http://127.0.0.1:8000/sandbox"
    check_video_url("http://127.0.0.1:8000/sandbox/files/videos/1")


def test_a_done_answer_with_an_internal_link_is_not_taken(running, api):  # noqa: F811
    api.get(f"{BASE}/video/status", json=ok({"status": "done",
                                             "video_url": "https://169.254.169.254/latest/"}))
    jobs.read_status(running, client())
    running = reload(running)
    assert running.status == Generation.Status.RUNNING
    assert running.video_url == ""


def test_a_redirect_to_an_internal_address_is_not_followed(done, api):  # noqa: F811
    Generation.objects.filter(pk=done.pk).update(video_url=f"https://{PUBLIC}/v.mp4")
    api.get(f"https://{PUBLIC}/v.mp4", status=302, headers={"Location": "http://127.0.0.1:6379/"})
    assert not jobs.store_video(done.pk)
    assert [c.request.url for c in api.calls] == [f"https://{PUBLIC}/v.mp4"]
    assert reload(done).copy_pending


def test_a_safe_redirect_is_followed(done, api):  # noqa: F811
    Generation.objects.filter(pk=done.pk).update(video_url=f"https://{PUBLIC}/v.mp4")
    api.get(f"https://{PUBLIC}/v.mp4", status=302, headers={"Location": "/real.mp4"})
    api.get(f"https://{PUBLIC}/real.mp4", body=b"video")
    assert jobs.store_video(done.pk)
