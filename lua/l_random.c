#include "tsl.h"
void tsL_open_random(lua_State *L, int methods, int module, int mt) { (void)L; (void)methods; (void)module; (void)mt; }
