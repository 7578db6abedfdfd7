"""Side-by-side measurements (not tests); each script prints ratios measured in one run.

A regular package, so that `benchmarks.serve_reference` is this folder's module even where an
installed distribution ships a top-level `benchmarks` package of its own (opacus 1.6 does).
"""
