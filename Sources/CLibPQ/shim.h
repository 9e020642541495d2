// libpq, PostgreSQL's C client library (Debian: libpq-dev), for the postgres storage driver.
#include <libpq-fe.h>
