"""What every seglab process needs: one-line user errors, distributed ranks, seeding, out-of-memory and write-target messages, the run directory's owner."""
