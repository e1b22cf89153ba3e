/* python.h: activation of the PyTorch saved-tensor hooks in Python processes, with only LD_PRELOAD. */
#ifndef GS_PYTHON_H
#define GS_PYTHON_H

/* In a Python process, puts the shim's bootstrap directory first on PYTHONPATH so that its
 * sitecustomize (which chains to the one it shadows and then waits for `import torch`) runs.
 * Any other process is left untouched. Called once by the constructor; no Python call is made. */
void gs__python_preinit(void);

#endif
