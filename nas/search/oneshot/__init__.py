"""The one-shot search's orchestration (``run``) and scoring on a supernet (``score``): the search layer of
:mod:`nas.oneshot`."""
