"""A trigram index on the case-folded prompts, on PostgreSQL only.

The history's search is `prompt_folded LIKE '%word%'`. Without an index a word
that matches few jobs reads every prompt of the team; pg_trgm's GIN index
answers it from the index. SQLite has no such index: the default stack keeps
the scan, which is fast enough for one machine's history.

Creating the extension needs a role allowed to (pg_trgm is a "trusted"
extension: a database owner may, since PostgreSQL 13). Where that is refused
the migration goes on without the index, and says so: search still works.
"""

import logging

from django.db import DatabaseError, migrations, transaction

logger = logging.getLogger(__name__)

INDEX = "generations_prompt_folded_trgm"


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    try:
        with transaction.atomic(using=schema_editor.connection.alias):
            schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            schema_editor.execute(
                f"CREATE INDEX IF NOT EXISTS {INDEX} ON generations_generation "
                "USING gin (prompt_folded gin_trgm_ops)"
            )
    except DatabaseError as e:
        logger.warning("history search index not created (%s): search works, "
                       "but reads every prompt", e)


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("generations", "0006_worker_heartbeat")]

    operations = [migrations.RunPython(create_index, drop_index)]
