"""Files that ``afterlearner init`` writes: ``task.py``, a commented task file that runs as it is."""
