/* placeholder: replaced by the real kernel */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static struct PyModuleDef mod = {PyModuleDef_HEAD_INIT, "cocoeval", "placeholder", -1, NULL};
PyMODINIT_FUNC PyInit_cocoeval(void) { return PyModule_Create(&mod); }
