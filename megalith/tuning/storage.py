"""Where a study lives: by default a journal file in the study folder (Optuna's
JournalFileBackend, appended line by line, so `kill -9` at any moment loses at most the trial
that was running), or a database URL (`postgresql://...`, `mysql://...`, `sqlite:///...`)
shared by workers on several machines.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO, TYPE_CHECKING

from megalith.errors import ConfigError, RunError
from megalith.tuning.objective import INTERRUPTED

if TYPE_CHECKING:
    import optuna

JOURNAL = "study.journal"
LOCK = ".tune.lock"
HEARTBEAT_S = 10
"""A database trial whose worker has not beaten for GRACE_S is failed and retried by others."""
GRACE_S = 60


def open_storage(url: str | None, study_dir: Path) -> optuna.storages.BaseStorage:
    """The journal file STUDY_DIR/study.journal (url None), a journal file at a path, or a
    database (a URL with '://'; workers that lose their heartbeat get their trial retried).

    Raises:
        ConfigError: the database driver is not installed or the URL cannot be used.
    """
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock, JournalStorage

    if url is None or "://" not in url:
        path = study_dir / JOURNAL if url is None else Path(url)
        backend = JournalFileBackend(str(path), lock_obj=JournalFileOpenLock(str(path)))
        return JournalStorage(backend)
    try:
        return optuna.storages.RDBStorage(
            url,
            heartbeat_interval=HEARTBEAT_S,
            grace_period=GRACE_S,
            failed_trial_callback=optuna.storages.RetryFailedTrialCallback(max_retry=2),
        )
    except ModuleNotFoundError as error:
        raise ConfigError(
            f"--storage {shown_url(url)}: its database driver {error.name} is not installed "
            "(for PostgreSQL: pip install psycopg2-binary)"
        ) from error
    except Exception as error:  # SQLAlchemy's errors have no common public base worth naming
        raise ConfigError(f"--storage {shown_url(url)}: cannot open it: {error}") from error


def shown_url(url: str | None) -> str:
    """The storage as safe to print and to write in study.json: a URL's password hidden."""
    if url is None or "://" not in url or "@" not in url:
        return url or JOURNAL
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in credentials else url


def hold_study_folder(study_dir: Path) -> IO[str]:
    """Lock STUDY_DIR for this command (released when the process ends, even by kill -9).

    Raises:
        RunError: another `megalith tune` holds it.
    """
    handle = (study_dir / LOCK).open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise RunError(
            f"{study_dir}: another `megalith tune` is running on this study; wait for it, or "
            "run several workers with --workers K (or a shared --storage URL)"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


def fail_interrupted_trials(study: optuna.Study, storage: optuna.storages.BaseStorage) -> list[int]:
    """Mark the trials left RUNNING by a killed tuner as failed and queue their parameters
    again; only for a local study whose folder lock this process holds (no one else runs).
    Returns their numbers."""
    import optuna

    study_id = storage.get_study_id_from_name(study.study_name)
    numbers = []
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        storage.set_trial_user_attr(trial_id, INTERRUPTED, True)
        storage.set_trial_state_values(trial_id, optuna.trial.TrialState.FAIL)
        study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})
        numbers.append(trial.number)
    return numbers
