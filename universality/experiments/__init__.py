"""The paper's experiments (Sec. 7), reproduced on a CPU as empirical claims with verdicts.

Layout (data flows one way):

- :mod:`.tasks` samples the task families (5-shot sinusoid, degree-3 polynomials) with NumPy;
- :mod:`.learners` holds the PyTorch learners (MAML via ``torch.func``, a SNAIL-style meta-learner,
  an LSTM meta-learner, the task-conditioned model);
- :mod:`.runs` trains and evaluates one seed / configuration and returns plain NumPy curves;
- :mod:`.engine` runs those jobs in parallel (``concurrent.futures`` or ``dask.distributed``);
- :mod:`universality.claims.experiments` turns the curves into verdicts (paired bootstrap);
- :mod:`.output` writes the JSON document and the plots; :mod:`.cli` is the command.

PyTorch and Dask are optional (``pip install -e '.[experiments]'``); only :mod:`.learners`,
:mod:`.runs` and :mod:`.omniglot`'s training import torch.
"""
