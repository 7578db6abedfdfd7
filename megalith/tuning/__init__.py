"""`megalith tune CONFIG --space SPACE.yaml`: an Optuna study over any config key.

    space = {"train.optimizer.lr": {"loguniform": [1e-4, 1e-2]}}
    study = tune("examples/breast_cancer.yaml", space, trials=20, study_dir="studies/bc")

space.py reads the search space, objective.py runs one trial through the ordinary training path
(pruning through a callback), storage.py opens the study where it survives a kill, study.py runs
it with one or several worker processes, and results.py / page.py write study.json, best.yaml
and study.html. Nothing here is imported at package level: megalith.config imports
megalith.tuning.settings, and the tuner itself imports the config.
"""
