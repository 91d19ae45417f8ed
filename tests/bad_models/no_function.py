# expect: no_function\.py: defines no function 'processes\(settings\)'
from procmgmt import Process

web = Process(name="web", process="/bin/sleep")
