"""PyTorch-faithful optimizers: ``torch.optim``'s names, arguments, defaults and numbers.

Built from the same primitives as the rest of optgrad; ``torch`` itself is never imported.
"""

from . import lr_scheduler as lr_scheduler
from . import swa_utils as swa_utils
from ._adadelta import Adadelta as Adadelta
from ._adafactor import Adafactor as Adafactor
from ._adagrad import Adagrad as Adagrad
from ._adam import Adam as Adam
from ._adam import AdamW as AdamW
from ._adamax import Adamax as Adamax
from ._asgd import ASGD as ASGD
from ._clip import ClipGradNormState as ClipGradNormState
from ._clip import clip_grad_norm as clip_grad_norm
from ._clip import clip_grad_value as clip_grad_value
from ._lbfgs import LBFGS as LBFGS
from ._lbfgs import LBFGSState as LBFGSState
from ._muon import Muon as Muon
from ._nadam import NAdam as NAdam
from ._radam import RAdam as RAdam
from ._rmsprop import RMSprop as RMSprop
from ._rprop import Rprop as Rprop
from ._sgd import SGD as SGD
from ._sparse_adam import SparseAdam as SparseAdam
from ._state_dict import load_state_dict as load_state_dict
