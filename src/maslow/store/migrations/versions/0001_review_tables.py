"""The review tables, ``review_sessions`` and ``review_decisions``, as ``create_all`` made them before migrations
(a database that has them and no revision is recorded as this one: ``maslow.store.migrations.BASELINE_COLUMNS``).

Revision ID: 0001
Revises:
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "review_sessions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("issues_path", sa.Text, nullable=False),
        sa.Column("issues_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("truth", sa.Text, nullable=False),
        sa.Column("truth_hash", sa.String(64), nullable=False),
        sa.Column("n_findings", sa.Integer, nullable=False),
        sa.Column("created", sa.String(40), nullable=False),
    )
    op.create_table(
        "review_decisions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("session_id", sa.Integer, sa.ForeignKey("review_sessions.id"), nullable=False),
        sa.Column("finding_key", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("label", sa.Text, nullable=True),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("reviewer", sa.Text, nullable=False),
        sa.Column("decided", sa.String(40), nullable=False),
    )
    op.create_index("ix_review_decisions_session_id", "review_decisions", ["session_id"])


def downgrade() -> None:
    op.drop_index("ix_review_decisions_session_id", table_name="review_decisions")
    op.drop_table("review_decisions")
    op.drop_table("review_sessions")
