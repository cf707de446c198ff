"""Performance harnesses comparing neurobench's numeric cores with their open peers."""
