"""Access control: API keys (stored as hashes) and a workspace on datasets, runs and scenarios.

Rows that exist before this migration belong to the workspace ``default`` (the local mode's).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

SCOPED = ("datasets", "runs", "scenarios")


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("workspace", sa.String(64), nullable=False, index=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )
    for table in SCOPED:
        with op.batch_alter_table(table) as batch:
            batch.add_column(
                sa.Column("workspace", sa.String(64), nullable=False, server_default="default")
            )
            batch.create_index(f"ix_{table}_workspace", ["workspace"])


def downgrade() -> None:
    for table in SCOPED:
        with op.batch_alter_table(table) as batch:
            batch.drop_index(f"ix_{table}_workspace")
            batch.drop_column("workspace")
    op.drop_table("api_keys")
