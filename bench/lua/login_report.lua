-- The login of login.lua, reporting one RESULT line like report.lua.
dofile("bench/lua/login.lua")
dofile("bench/lua/report.lua")
