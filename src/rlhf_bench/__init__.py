"""rlhf-bench: the documented RLHF experiments as one reproducible DAG.

The frame is here (config, settings, layout, runtime, io); the stages live in train/, analysis/ and report/.
"""
