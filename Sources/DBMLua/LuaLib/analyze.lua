-- dbm.analyze: being written
return {}
