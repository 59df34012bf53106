import Hummingbird
import HummingbirdWebSocket
import ArgumentParser
import ServiceLifecycle
print("placeholder")
