"""Import every table module so SQLModel.metadata knows the whole schema (Alembic, tests).

Each area keeps its tables in its own module; add the module here when you add one.
"""

import models.auth_tables
import models.calendar_tables
import models.index_tables
import models.tables
import models.web_tables  # noqa: F401
