"""`python -m rlaif_sql`: the same command line as the `rlaif-sql` script."""

from rlaif_sql.cli import run

if __name__ == "__main__":
    run()
