-- dbm.diagnostics: being written
return {}
