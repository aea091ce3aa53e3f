"""The one module that imports django-q2: what the portal hands to its workers.

Tasks carry ids only, never a key or a prompt; each task re-reads its state.
"""

from django_q.tasks import async_task


def start_member_worker(user_id: int) -> None:
    """Have a worker go through this member's active jobs (a no-op if one already is)."""
    async_task("generations.jobs.work_for_member", user_id, task_name=f"member-{user_id}",
               group="pixverse")


def store_video(generation_id: int) -> None:
    async_task("generations.jobs.store_video", generation_id,
               task_name=f"store-{generation_id}", group="pixverse")
