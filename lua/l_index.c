#include "tsl.h"
void tsL_open_index(lua_State *L, int methods, int module, int mt) { (void)L; (void)methods; (void)module; (void)mt; }
