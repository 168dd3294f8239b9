// Compiled by the layering tests (tests/CMakeLists.txt) against one layer's include
// root: it builds where the workload layer is visible (workload and the layers above)
// and must fail where it is not (core, model).
#include "workload/workload.hpp"

int main() { return minipt::StepPlan{}.ranks.empty() ? 0 : 1; }
