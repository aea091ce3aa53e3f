"""The schedule that restarts member workers after a crash or restart (jobs.dispatch_workers)."""

from django.db import migrations


def create_schedule(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    Schedule.objects.update_or_create(
        name="pixverse-dispatch-workers",
        defaults={"func": "generations.jobs.dispatch_workers", "schedule_type": "I",
                  "minutes": 1, "repeats": -1},
    )


def delete_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name="pixverse-dispatch-workers").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("generations", "0003_generation"),
        ("django_q", "0018_task_success_index"),
    ]

    operations = [migrations.RunPython(create_schedule, delete_schedule)]
