"""`python -m rlhf_bench.report`: the report stage CLI."""

from rlhf_bench.report.render import main

raise SystemExit(main())
