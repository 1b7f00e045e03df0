-- dbm.progress: being written
return {}
