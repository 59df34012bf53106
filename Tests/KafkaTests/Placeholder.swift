import Testing
@Test func placeholderKafka() {}
