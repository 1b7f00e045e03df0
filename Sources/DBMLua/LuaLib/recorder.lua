-- dbm.recorder: being written
return {}
