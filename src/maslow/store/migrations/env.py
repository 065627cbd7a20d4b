"""Alembic's environment for the workspace database: run from code (``maslow.store.migrations.upgrade``), on the
connection the caller passes in ``config.attributes["connection"]`` and inside its transaction. There is no
``alembic.ini`` and no offline (``--sql``) mode."""

from alembic import context

from maslow.errors import MaslowError
from maslow.store.migrations import VERSION_TABLE
from maslow.store.reviews import metadata

connection = context.config.attributes.get("connection")
if connection is None or context.is_offline_mode():
    raise MaslowError("maslow's migrations run on a connection given by maslow.store.migrations.upgrade (`maslow "
                      "review db upgrade`), not from the alembic command or in --sql mode")
context.configure(connection=connection, target_metadata=metadata(), version_table=VERSION_TABLE,
                  render_as_batch=connection.dialect.name == "sqlite", compare_type=True)
with context.begin_transaction():
    context.run_migrations()
