-- dbm.plot: being written
return {}
